"""Command-line flags generated from a script's config dataclass."""

import argparse
import dataclasses
import inspect
import io
import os
import sys
import tokenize
import types
import typing


def field_comments(cls) -> dict:
    """Maps each field of a dataclass to the `# comment` on its line in the source (base classes too)."""
    comments = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        current = None
        for token in tokenize.generate_tokens(io.StringIO(inspect.getsource(klass)).readline):
            if token.type == tokenize.NAME and token.start[1] == 4 and current is None:
                current = token.string
            elif token.type == tokenize.COMMENT and current is not None:
                comments[current] = token.string.lstrip("# ").strip()
            elif token.type == tokenize.NEWLINE:
                current = None
    return comments


def parse_bool(text: str) -> bool:
    """Parses true/false (also 1/0, yes/no) as argparse flags take them."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "y"):
        return True
    if value in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _flag_kwargs(field_type) -> dict:
    """argparse keyword arguments for one field type (X | None takes X: None is the default, never typed)."""
    if typing.get_origin(field_type) in (typing.Union, types.UnionType):
        (field_type,) = set(typing.get_args(field_type)) - {type(None)}
    origin = typing.get_origin(field_type)
    if field_type is bool:
        # `--fix` alone means true; `--fix false` too is accepted
        return {"type": parse_bool, "metavar": "{true,false}", "nargs": "?", "const": True}
    if origin in (list, tuple):
        (item_type,) = set(typing.get_args(field_type)) - {Ellipsis}
        # nargs="*" so that `--cls_weights` alone can clear a list that defaults to values.
        return {"type": item_type, "nargs": "*"}
    return {"type": field_type}


def parse_config(cls, argv=None, description: str = ""):
    """Builds an instance of the dataclass `cls` from its defaults overridden by `--field value` flags.

    Args:
        cls: A dataclass whose fields carry their help as a `# comment` on the same line.
        argv: Arguments to parse; None reads sys.argv.
        description: Text shown by -h above the flags.

    Returns:
        An instance of `cls`.
    """
    comments = field_comments(cls)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = cls()
    for field in dataclasses.fields(cls):
        default = getattr(defaults, field.name)
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        shown = "as recorded in the weights file" if default is None else shown
        parser.add_argument(
            f"--{field.name}",
            default=default,
            # argparse formats help with %: a literal one (e.g. "area %") is written %%
            help=f"{comments.get(field.name, '')} (default: {shown!s})".strip().replace("%", "%%"),
            **_flag_kwargs(hints[field.name]),
        )
    values = vars(parser.parse_args(argv))
    # a path given in quotes keeps its '~', which the shell would have expanded: expanded here alike
    for name, value in values.items():
        if name.endswith(("_path", "_dir")) and isinstance(value, str) and value.startswith("~"):
            values[name] = os.path.expanduser(value)
    return cls(**values)


def format_config(config) -> str:
    """The resolved config as an aligned two-column table."""
    items = dataclasses.asdict(config)
    width = max(map(len, items))
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in items.items())


def run_main(main, cls, description: str = "") -> None:
    """A script's entry point: flags -> config -> main(config); a ValueError (bad settings or data) is printed
    as one `error:` paragraph with exit status 2, not a traceback."""
    try:
        main(parse_config(cls, description=description))
    except ValueError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        if getattr(error, "skip_teardown", False):  # utils.weights.checkpoint.WriteFailed: HDF5 would crash at exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        sys.exit(2)


def given_flags(cls, argv=None) -> set:
    """The names of the fields of `cls` that the command line sets explicitly (as opposed to their defaults)."""
    parser = argparse.ArgumentParser(argument_default=argparse.SUPPRESS, add_help=False)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        parser.add_argument(f"--{field.name}", **_flag_kwargs(hints[field.name]))
    known, _ = parser.parse_known_args(argv)
    return set(vars(known))


def given_settings(config) -> set:
    """The fields of a config dataclass that its user set: on the command line (given_flags), or to a value other
    than the default (a config made in code)."""
    changed = set()
    for field in dataclasses.fields(config):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if getattr(config, field.name) != default:
            changed.add(field.name)
    return given_flags(type(config)) | changed
