"""Class names of the datasets, and class arguments given by name or index ("sneaker", "7", "Ankle boot").

Fashion-MNIST's names are those its builder writes; the digits' classes are the
digits themselves; other datasets' classes are their indices. A name matches
case-insensitively, ignoring spaces, "_" and "-", and also by either part of a
"/" name ("t-shirt" or "top" for "T-shirt/top").
"""

from jgen.errors import UserError


def class_names(dataset: str, num_classes: int) -> tuple[str, ...]:
  """The `num_classes` names of a dataset's labels, in label order."""
  if dataset == "fashion_mnist":
    from jgen.data.builders import FASHION_MNIST_CLASSES

    return tuple(FASHION_MNIST_CLASSES)
  return tuple(str(i) for i in range(num_classes))


def _key(text: str) -> str:
  return "".join(ch for ch in text.lower() if ch not in " _-")


def _aliases(names) -> dict[str, int]:
  aliases = {}
  for i, name in enumerate(names):
    for alias in (name, *name.split("/"), str(i)):
      aliases.setdefault(_key(alias), i)
  return aliases


def lookup(text: str, names) -> int | None:
  """The label of class `text` (a name, an alias or an index), None where no class matches."""
  if not _key(text) or text.strip().startswith("-") or text.strip().endswith("-"):  # "-1" is no index
    return None
  return _aliases(names).get(_key(text))


def parse_pair(text: str, names, flag: str = "--attribute") -> tuple[int, int]:
  """"A-B" -> (label of A, label of B). Names may hold "-" themselves ("t-shirt-sneaker"): the split that
  names two known, different classes is taken."""
  known = ", ".join(n.lower() for n in names)
  splits = [(text[:i], text[i + 1:]) for i, ch in enumerate(text) if ch == "-"]
  if not splits:
    raise UserError(f"{flag} {text!r}: give two classes as CLASS_A-CLASS_B (names or indices, e.g. "
                    f"{names[-1].lower()}-{names[0].lower()}); classes: {known}")
  pairs = {(lookup(a, names), lookup(b, names)) for a, b in splits}
  pairs = {(a, b) for a, b in pairs if a is not None and b is not None}
  if not pairs:
    raise UserError(f"{flag} {text!r} does not name two classes of this dataset; classes: {known} "
                    f"(or indices 0..{len(names) - 1})")
  if len(pairs) > 1:
    raise UserError(f"{flag} {text!r} is ambiguous; give class indices instead (e.g. 7-5)")
  a, b = pairs.pop()
  if a == b:
    raise UserError(f"{flag} {text!r} names {names[a]!r} twice: give two different classes")
  return a, b
