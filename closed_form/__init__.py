"""Closed-form item-item recommenders (EASE), fitted with numpy and scipy.

One floor below the components and the trainer module, because both use them: the
Evaluator's EASE baseline (components/retrieval_evaluator) and the Trainer's EASE factor
(trainer_module/ease_factor.py).
"""
