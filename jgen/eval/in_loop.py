"""Evaluators the loop runs at its eval steps besides the family's `eval_step` (`train.evals`).

"fid:N" draws N samples under the family's default conditions and reports
FID-FMNIST against the first N validation images; "pr:N" precision and recall
on the same features; "classes:N" the mode-collapse diagnostics of
jgen.eval.class_coverage (classes covered, KL of the class histogram to uniform, and for a
label-conditional family the accuracy of its samples' classes). Their keys can be a family's main metric, so an implicit
model (GAN, EBM) keeps its best checkpoint by sample quality. FID-FMNIST is
not Inception FID (see jgen.eval.suite).
"""

import jax
import numpy as np

from jgen.errors import UserError

# evaluator -> the metrics it reports
EVALUATORS = {"fid": ("fid_fmnist",), "pr": ("precision", "recall"),
              "classes": ("classes_covered", "class_kl", "class_accuracy")}
FEATURE_IMAGE_SHAPE = (28, 28, 1)


def metric_names(evals: dict) -> set[str]:
  return {key for name in evals for key in EVALUATORS[name]}


class SampleQuality:
  """FID-FMNIST and precision/recall of a family's samples against the validation images."""

  def __init__(self, evals: dict[str, int], family, sampler, real_images: np.ndarray, batch_size: int = 500):
    if not family.generative or family.spec.shape != FEATURE_IMAGE_SHAPE:
      raise UserError(f"train.evals={','.join(evals)}: sample metrics need a generative model of 28x28x1 images "
                      f"(the FID-FMNIST features); {family.config.model.name} on {family.config.data.name} is not "
                      f"one: set train.evals=''")
    from jgen.eval.features import load_feature_network

    self.evals = evals
    self.sampler = sampler
    self.batch_size = batch_size
    self.net = load_feature_network()
    self.n = max(evals.values())
    if len(real_images) < self.n:
      raise UserError(f"train.evals asks for {self.n} samples but the validation split has {len(real_images)} images")
    self.real = self.net(real_images[:self.n])

  def __call__(self, state, rng: jax.Array) -> dict[str, float]:
    from jgen.eval import frechet, precision_recall
    from jgen.train.sampling import draw_with_labels

    images, labels = draw_with_labels(self.sampler, state, self.n, rng, self.batch_size)
    images = np.clip(np.nan_to_num(images), 0.0, 1.0)
    fake = self.net(images)
    out = {}
    if "classes" in self.evals:
      from jgen.eval.class_coverage import coverage

      n = self.evals["classes"]
      out.update(coverage(self.net.logits(images[:n]), None if labels is None else labels[:n]))
    if "fid" in self.evals:
      n = self.evals["fid"]
      out["fid_fmnist"] = frechet.frechet_distance_of_features(self.real[:n], fake[:n])
    if "pr" in self.evals:
      n = self.evals["pr"]
      out["precision"], out["recall"] = precision_recall.precision_recall(self.real[:n], fake[:n])
    return {k: float(v) for k, v in out.items()}
