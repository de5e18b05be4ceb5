"""Model name -> family class. Families register themselves with `@register`.

Every module under `jgen.families` is imported on first lookup, so adding a
model is adding one module (and a config that names it). Each module is
imported on its own: one that fails to import loses only its own models, and
asking for one of those names says why.
"""

import dataclasses
import difflib
import importlib
import pkgutil

from jgen.errors import UserError

# The taxonomy in teaching order: (branch, family). `jgen list` prints it in this order.
TAXONOMY = (
    ("classical latent-variable", "linear / mixture"),
    ("explicit, tractable", "autoregressive"),
    ("explicit, tractable", "normalizing flow"),
    ("explicit, approximate", "VAE"),
    ("explicit, approximate", "energy-based"),
    ("explicit, approximate", "diffusion"),
    ("implicit", "GAN"),
)
# Networks that serve evaluation (the FID-FMNIST feature classifier) train through
# the same loop but are not generative models: registered, not listed in the taxonomy.
AUXILIARY = ("evaluation", "feature network")
_FAMILIES = {family: branch for branch, family in TAXONOMY + (AUXILIARY,)}


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  family: str
  branch: str
  cls: type


_MODELS: dict[str, Entry] = {}
_BROKEN: dict[str, str] = {}  # module -> why it failed to import
_loaded = False


def register(name: str, *, family: str):
  """Class decorator: registers a `Family` subclass under `name` in `family` of the taxonomy."""
  if family not in _FAMILIES:
    raise ValueError(f"unknown family {family!r}; one of {sorted(_FAMILIES)}")

  def wrap(cls):
    from jgen.family import Family, capability_errors

    if issubclass(cls, Family):
      errors = capability_errors(cls)
      if errors:
        raise TypeError(f"{cls.__name__} ({name}): {'; '.join(errors)}")
    if name in _MODELS and _MODELS[name].cls is not cls:
      raise ValueError(f"model name {name!r} registered twice")
    cls.family, cls.branch = family, _FAMILIES[family]
    _MODELS[name] = Entry(name, family, _FAMILIES[family], cls)
    return cls

  return wrap


def _load_all():
  global _loaded
  if _loaded:
    return
  import jgen.families as pkg

  for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".", onerror=_record_broken):
    try:
      importlib.import_module(info.name)
    except Exception as e:  # a broken family module must not take the others down
      _record_broken(info.name, e)
  _loaded = True


def _record_broken(module: str, error: Exception | None = None) -> None:
  _BROKEN[module] = f"{type(error).__name__}: {error}" if error is not None else "failed to import"


def broken_modules() -> dict[str, str]:
  _load_all()
  return dict(_BROKEN)


def models() -> dict[str, Entry]:
  _load_all()
  return dict(_MODELS)


def lookup(name: str) -> Entry:
  all_models = models()
  if name not in all_models:
    near = difflib.get_close_matches(name, list(all_models), n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known models: {', '.join(sorted(all_models))}"
    broken = "".join(f"; {module} failed to import ({why})" for module, why in _BROKEN.items())
    raise UserError(f"unknown model {name!r}{hint}{broken}")
  return all_models[name]


def build(config, spec=None):
  """The model object of `config.model.name` for `spec` (default: the spec of `config.data`'s dataset)."""
  from jgen.data import spec as spec_lib

  spec = spec if spec is not None else spec_lib.from_dataset(config.data)
  try:
    return lookup(config.model.name).cls(config, spec)
  except ValueError as e:  # a model that cannot serve this data says so at construction
    raise UserError(f"{config.model.name} on {config.data.name}: {e}") from None
