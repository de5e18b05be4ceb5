"""`jgen list`: the taxonomy table built from the registry and the configs that name each model."""

import ast
import collections
import os
import pathlib

from jgen import registry


def configs_dir() -> pathlib.Path:
  """The repository's configs/ (beside the package in a source checkout)."""
  return pathlib.Path(os.environ.get("JGEN_CONFIGS_DIR", pathlib.Path(__file__).resolve().parent.parent / "configs"))


def configs_by_model() -> dict[str, list[str]]:
  """Maps model name -> config files, read from each config's `name="..."` without running it."""
  found = collections.defaultdict(list)
  root = configs_dir()
  if not root.is_dir():
    return found
  for path in sorted(root.rglob("*.py")):
    try:
      tree = ast.parse(path.read_text())
    except SyntaxError:
      continue
    for name in _model_names(tree):
      if name in registry.models():
        found[name].append(str(path.relative_to(root.parent)))
        break
  return found


def _model_names(tree):
  """String values given to a `name` field: `dict(name="...")` or `config.model.name = "..."`."""
  for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "name" and isinstance(node.value, ast.Constant):
      yield node.value.value
    elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
          and any(isinstance(t, ast.Attribute) and t.attr == "name" for t in node.targets)):
      yield node.value.value


def taxonomy_table() -> str:
  models = registry.models()
  configs = configs_by_model()
  rows = [("branch", "family", "models", "configs")]
  for branch, family in registry.TAXONOMY + (registry.AUXILIARY,):
    names = sorted(n for n, e in models.items() if e.family == family)
    files = sorted(f for n in names for f in configs.get(n, []))
    rows.append((branch, family, ", ".join(names) or "-", ", ".join(files) or "-"))
  widths = [max(len(r[i]) for r in rows) for i in range(3)]
  lines = []
  for i, r in enumerate(rows):
    lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    if i == 0:
      lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
  return "\n".join(lines)
