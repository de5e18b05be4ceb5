"""Mode-collapse diagnostics from the shipped Fashion-MNIST classifier's predictions on samples.

- classes_covered: how many of the C classes the classifier assigns at least one sample to (a collapsed
  generator covers few);
- class_kl: KL(p || uniform) of the predicted-class histogram p, in nats (0 when the classes are balanced,
  log C when every sample falls in one class);
- class_accuracy: for samples drawn under requested labels (a conditional model), the fraction the classifier
  assigns to the requested class.
"""

import numpy as np

CLASSES_CONVENTION = ("predicted classes of the shipped Fashion-MNIST classifier on samples: classes with at least "
                      "one sample, KL of the predicted-class histogram to uniform (nats); class accuracy: the share "
                      "of samples classified as the label they were drawn under")


def class_histogram(predicted, num_classes: int) -> np.ndarray:
  """Share of samples per predicted class [C] (sums to 1)."""
  counts = np.bincount(np.asarray(predicted, np.int64), minlength=num_classes)[:num_classes]
  return counts / max(counts.sum(), 1)


def coverage(logits, requested=None) -> dict[str, float]:
  """classes_covered, class_kl (and class_accuracy where `requested` labels [N] are given) of logits [N, C]."""
  logits = np.asarray(logits)
  num_classes = logits.shape[1]
  predicted = logits.argmax(axis=1)
  p = class_histogram(predicted, num_classes)
  nonzero = p > 0
  out = {"classes_covered": float(nonzero.sum()),
         "class_kl": float(np.sum(p[nonzero] * np.log(p[nonzero] * num_classes)))}
  if requested is not None:
    out["class_accuracy"] = float(np.mean(predicted == np.asarray(requested)))
  return out
