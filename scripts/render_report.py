"""Renders an Evaluator report.html in headless Chromium to a PNG, as a user's browser shows it.

    python scripts/render_report.py --report tfx_root [--output docs/evaluation_report.png]

--report is a report.html, an `evaluation` artifact directory, or a pipeline root (the
newest RetrievalEvaluator report under it). Chromium is Debian's `chromium` package; when
it is missing the script installs it with apt-get (needs root). Chromium runs with a fresh
profile and with networking features off; the report needs no network (its plots are
embedded). The page is captured in a tall window, and the blank space below the content
is cropped away.
"""
import argparse
import glob
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from PIL import Image
from PIL import ImageChops

_CHROMIUM = "chromium"
_REPORT = "report.html"
_MARGIN = 16  # Pixels of background kept below the content.


def find_report(path: str) -> pathlib.Path:
  """The report.html that `path` names, or the newest one under a pipeline root."""
  candidate = pathlib.Path(path)
  if candidate.is_file():
    return candidate
  if (candidate / _REPORT).is_file():
    return candidate / _REPORT
  found = glob.glob(str(candidate / "**" / "evaluation" / "*" / _REPORT), recursive=True)
  if not found:
    raise FileNotFoundError(f"No {_REPORT} at or under {path}; run the pipeline first.")
  return pathlib.Path(max(found, key=os.path.getmtime))


def ensure_chromium() -> str:
  """The chromium executable, installed from Debian's packages if missing."""
  executable = shutil.which(_CHROMIUM)
  if executable:
    return executable
  if os.geteuid() != 0:
    raise RuntimeError(f"{_CHROMIUM} is not installed and installing it needs root: "
                       f"apt-get install -y {_CHROMIUM}")
  print(f"Installing {_CHROMIUM} with apt-get...", file=sys.stderr)
  env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
  subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
  subprocess.run(["apt-get", "install", "-y", "-qq", _CHROMIUM], check=True, env=env)
  executable = shutil.which(_CHROMIUM)
  if not executable:
    raise RuntimeError(f"apt-get installed {_CHROMIUM} but it is not on PATH.")
  return executable


def screenshot(chromium: str, report: pathlib.Path, output: pathlib.Path, width: int,
               height: int, timeout: float) -> None:
  """Captures the page at width x height pixels into `output` (PNG)."""
  with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--screenshot={output}", f"--window-size={width},{height}",
        report.resolve().as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                               check=False)
  if completed.returncode != 0 or not output.is_file():
    raise RuntimeError(f"Chromium failed (exit {completed.returncode}):\n"
                       f"{completed.stderr[-2000:]}")


def crop_bottom(output: pathlib.Path) -> None:
  """Cuts the uniform background below the page's content."""
  with Image.open(output) as image:
    rgb = image.convert("RGB")
  background = Image.new("RGB", rgb.size, rgb.getpixel((rgb.width - 1, rgb.height - 1)))
  box = ImageChops.difference(rgb, background).getbbox()
  if box is not None:
    rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + _MARGIN))).save(output)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--report", required=True,
                      help="report.html, an evaluation artifact dir, or a pipeline root.")
  parser.add_argument("--output", default="docs/evaluation_report.png", help="PNG to write.")
  parser.add_argument("--width", type=int, default=1200, help="Window width in pixels.")
  parser.add_argument("--height", type=int, default=9000,
                      help="Window height in pixels; blank space below the page is cropped.")
  parser.add_argument("--timeout", type=float, default=120, help="Seconds for Chromium.")
  args = parser.parse_args(argv)
  report = find_report(args.report)
  output = pathlib.Path(args.output)
  output.parent.mkdir(parents=True, exist_ok=True)
  screenshot(ensure_chromium(), report, output, args.width, args.height, args.timeout)
  crop_bottom(output)
  with Image.open(output) as image:
    print(f"Rendered {report} to {output} ({image.width}x{image.height} pixels).")


if __name__ == "__main__":
  main()
