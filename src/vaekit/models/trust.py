"""Which classes a file that vaekit reads back may name, decided from the name alone, before any import.

A run folder is data: its JSON names classes as 'module:QualName', and importing a module runs its code. So a
name is imported only when it is on the allow-list (cf. ``torch.load(weights_only=True)`` and its safe globals):

- vaekit's model classes (modules ``vaekit.models.*`` and ``vaekit.core.*``: not its feature networks, which open
  the files their arguments name) and torch's layers (``torch.nn`` and ``torch.nn.*``);
- classes registered in this process, ``vaekit.register_module(cls)`` (no import: the class is at hand);
- classes that installed packages declare in the entry-point group ``vaekit.modules``: a value
  'package.module:Class' allows that class, a value 'package.module' the classes defined in that module.
  Entry points are read from the package metadata of the site directories only (a ``*.dist-info`` lying in
  the working directory, which may be the folder being opened, counts for nothing), and are never loaded for
  the check.

A name that leads, in a module already imported (``os:system``), to no ``nn.Module`` class is refused as that
(looked up statically: nothing is imported, no code runs). After the import the object must be an ``nn.Module``
class defined where its name said. ``trusting()`` (the ``trust_code=True`` of ``vaekit.load_run`` and
``--trust-code`` on the command line) lifts the list for a folder the user trusts: the named modules are then
imported, and their top-level code runs.
"""

from __future__ import annotations

import importlib
import inspect
import re
import site
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.metadata import entry_points
from pathlib import Path

from torch import nn

from ..errors import VaekitError

GROUP = "vaekit.modules"  # the entry-point group of packages' own module classes
OWN = ("vaekit.models", "vaekit.core", "torch.nn")  # packages whose nn.Module classes are always allowed (not
# vaekit's others: a feature network, say, opens the file a spec names)
NAME = r"(?!__)[A-Za-z_][A-Za-z0-9_]*"  # an ASCII identifier, no dunder (no __class__, __globals__ walks)
PATH = re.compile(rf"{NAME}(?:\.{NAME})*:{NAME}(?:\.{NAME})*")
REGISTERED: dict[str, type[nn.Module]] = {}  # 'module:QualName' -> the class
_TRUSTED: ContextVar[bool] = ContextVar("vaekit_trust_code", default=False)


class NotAllowed(VaekitError):
    """A class a file names that is not on the allow-list, in one line: ``what`` names it, ``ways`` says how to allow
    it from Python (the command line words its own ways), ``module`` is the module it lives in."""

    def __init__(self, what: str, path: str):
        self.what, self.module, cls = what, path.partition(":")[0], path.rpartition(":")[2]
        self.ways = (
            f"allow it with vaekit.register_module({cls}) or a '{GROUP}' entry point, load the weights into an "
            "instance with load_run(path, model=...), or, for a folder you trust, pass trust_code=True"
        )
        super().__init__(f"{what}: {self.ways}", key="trust_code")


def register_module(cls: type[nn.Module]) -> type[nn.Module]:
    """Let run folders name ``cls`` (an ``nn.Module`` class that imports as 'module:QualName'); returns ``cls``,
    so it also decorates a class: ``@vaekit.register_module``."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise VaekitError(f"register_module takes an nn.Module class, got {cls!r}")
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "a function" if "<locals>" in cls.__qualname__ else "__main__ (a script or a notebook)"
        raise VaekitError(
            f"{cls.__qualname__} is defined in {where}, so no file can name it: load a run of it "
            "with vaekit.load_run(path, model=...) (an instance built as before), or move the class into a module"
        )
    REGISTERED[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return cls


@contextmanager
def trusting(trust: bool = True) -> Iterator[None]:
    """Within the block (when ``trust``), files may name any class: its module is imported and runs its code.
    ``trust=False`` keeps whatever an enclosing block decided."""
    token = _TRUSTED.set(True) if trust else None
    try:
        yield
    finally:
        if token is not None:
            _TRUSTED.reset(token)


def check_name(path: object, source: str = "") -> None:
    """Refuse, in one line, a class name that is malformed or not on the allow-list; imports nothing."""
    where = f"{source}: " if source else ""
    if not isinstance(path, str) or not PATH.fullmatch(path):
        raise VaekitError(f"{where}{str(path)[:80]!r} is not a class name of the form 'package.module:Class'")
    if _TRUSTED.get() or path in REGISTERED or _own(path.partition(":")[0]) or _declared(path):
        return
    if (kind := _loaded_kind(path)) is not None:  # in a module already imported: no code runs to look
        raise VaekitError(
            f"{source or 'the spec'} names the class {path}, which is {kind}, not an nn.Module class: vaekit's files "
            "name module classes only (this one was altered, or is not vaekit's); refusing it"
        )
    what = f"{source or 'the spec'} names the class {path}, which vaekit imports only when allowed"
    raise NotAllowed(f"{what} (importing runs the module's code)", path)


def _loaded_kind(path: str) -> str | None:
    """What ``path`` names, in words ("a function"), where its module is already imported and the object found
    there (read statically: no module ``__getattr__`` runs) is not an ``nn.Module`` class; else None."""
    module, _, qualname = path.partition(":")
    found: object = sys.modules.get(module)
    try:
        for part in qualname.split(".") if found is not None else ():
            found = inspect.getattr_static(found, part)
    except AttributeError:
        return None
    if found is None or (isinstance(found, type) and issubclass(found, nn.Module)):
        return None
    if inspect.isroutine(found):
        return "a function"
    return "a class" if isinstance(found, type) else f"a {type(found).__name__}"


def resolve_class(path: str, source: str = "") -> type[nn.Module]:
    """The ``nn.Module`` class ``path`` names, once ``check_name`` allows it (the one way files name classes)."""
    check_name(path, source)
    if path in REGISTERED:
        return REGISTERED[path]
    try:
        cls = import_path(path)
    except (ImportError, AttributeError, ValueError) as e:
        hint = ": its module must be importable, on Python's path (PYTHONPATH)" if isinstance(e, ImportError) else ""
        where = f"{source}: " if source else ""
        raise VaekitError(f"{where}cannot import the class {path} ({type(e).__name__}: {e}){hint}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        where = f"{source}: " if source else ""
        raise VaekitError(f"{where}{path} is not a torch.nn.Module class; refusing to call it")
    if not _TRUSTED.get() and not _defined_where_named(cls, path):
        raise VaekitError(f"{path} leads to {cls.__module__}:{cls.__qualname__}, which is not on the allow-list")
    return cls


def import_path(path: str) -> object:
    """The object at 'package.module:Qual.Name' (imports the module: check the name first)."""
    module, _, qualname = path.partition(":")
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _own(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in OWN)  # 'vaekit.modelsx' is not 'vaekit.models'


def _declared(path: str) -> bool:
    """Whether an installed package's 'vaekit.modules' entry point allows ``path`` (read, not loaded)."""
    module = path.partition(":")[0]
    return any(ep.value.strip() in (path, module) for ep in _entry_points())


def _entry_points() -> list:
    """The group's entry points of distributions installed in the site directories."""
    sites = _site_dirs()
    found = []
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        try:
            where = Path(str(dist.locate_file(""))).resolve() if dist is not None else None
        except (OSError, NotImplementedError):
            where = None
        if where in sites:
            found.append(ep)
    return found


def _site_dirs() -> set[Path]:
    """Where installed packages live: the interpreter's and the user's site-packages."""
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")} | set(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.add(site.getusersitepackages())
    return {Path(d).resolve() for d in dirs}


def _defined_where_named(cls: type, path: str) -> bool:
    """An own name must lead to an own class; a declared module's name to a class defined in that module (a
    declared 'module:Class' may lead to a class re-exported there)."""
    module = path.partition(":")[0]
    if _own(module):
        return _own(cls.__module__)
    return cls.__module__ == module or any(ep.value.strip() == path for ep in _entry_points())
