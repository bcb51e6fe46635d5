"""The `phoenix-npu` command.

Each subcommand lives in its own module, which defines `add_arguments(parser)` and
`run(args) -> int`; building the parser imports no heavy dependency (torch, transformers),
so `phoenix-npu doctor` and `info` work without the Whisper extras. This is also where
logging is configured: the package itself only logs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .extras import missing_message

DESCRIPTION = ("PhoenixNPUExecutionProvider for ONNX Runtime: Whisper transcription with the encoder on the "
               "AMD Phoenix NPU (or its emulated device), and the tools around it.")

# command -> (module, one-line help)
COMMANDS = {
    "transcribe": ("phoenix_npu.whisper.transcribe_cli", "transcribe audio files with Whisper on PhoenixNPU"),
    "import": ("phoenix_npu.whisper.importer", "import a CTranslate2 Whisper checkpoint as a Hugging Face directory"),
    "export": ("phoenix_npu.whisper.export", "export Whisper to ONNX with Optimum (opset 17, fixed encoder dims)"),
    "doctor": ("phoenix_npu.doctor", "check the NPU driver, XRT, kernel manifest and artifacts"),
    "info": ("phoenix_npu.info", "show the provider library and its devices, or where a model's nodes run and why"),
}

# Commands other packages add (the developers' phoenix-npu-tools adds `bench` and `plan`): entry
# points of this group, name = a module with add_arguments(parser), run(args) and HELP.
COMMAND_GROUP = "phoenix_npu.commands"
# what to install for a developer command that is not there
TOOLS_HINT = "install the developer tools: pip install ./tools (from a checkout of phoenix-npu)"
TOOL_COMMANDS = ("bench", "plan")

# Libraries whose INFO/WARNING chatter (deprecations, tracer notes) is not for a CLI user.
QUIET_LOGGERS = ("transformers", "optimum", "torch", "faster_whisper", "huggingface_hub")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("phoenix-npu")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def commands() -> dict[str, tuple[str, str | None]]:
    """command -> (module, help or None when the module gives it): this package's, then the
    entry points of COMMAND_GROUP (never overriding one of ours)."""
    from importlib import metadata

    found = dict(COMMANDS)
    for ep in metadata.entry_points(group=COMMAND_GROUP):
        found.setdefault(ep.name, (ep.value, None))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phoenix-npu", description=DESCRIPTION,
                                     epilog="Run `phoenix-npu COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print debug messages too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in commands().items():
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a missing optional dependency of that command
            loaded = None
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(_missing=exc)
        if loaded is not None:
            help_text = help_text or getattr(loaded, "HELP", None)
            p = sub.add_parser(name, help=help_text, description=help_text)
            loaded.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """The package's messages to stderr as "[phoenix-npu] ..."; other libraries' chatter off."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[phoenix-npu] %(message)s"))
    logger = logging.getLogger("phoenix_npu")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    if not verbose:
        # transformers sets its loggers' level from TRANSFORMERS_VERBOSITY when it is imported
        # (later, by the command); the level set here covers an already imported one.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="(transformers|optimum|torch)(\\.|$)")
    quiet_native_libraries(quiet)


def quiet_native_libraries(quiet: bool) -> None:
    """The log levels of the libraries that print from C++ (to stderr, past Python's logging):
    with -q, errors only. CTranslate2 reads CT2_VERBOSE when it loads (also in Ray workers,
    which inherit the environment) and takes ctranslate2.set_log_level once loaded; ONNX
    Runtime's default logger takes set_default_logger_severity (3: errors)."""
    if not quiet:
        return
    os.environ["CT2_VERBOSE"] = "-1"  # -1: errors (0, the default, prints warnings)
    if "ctranslate2" in sys.modules:
        sys.modules["ctranslate2"].set_log_level(logging.ERROR)
    try:
        import onnxruntime
    except ImportError:
        return
    onnxruntime.set_default_logger_severity(3)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    missing_tool = next((a for a in argv if not a.startswith("-")), None)
    if missing_tool in TOOL_COMMANDS and missing_tool not in commands():
        print(f"phoenix-npu {missing_tool}: a developer command; {TOOLS_HINT}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None) is not None:
        exc = args._missing
        print(f"phoenix-npu {args.command}: " + (missing_message(exc) or f"{exc}; reinstall phoenix-npu"),
              file=sys.stderr)
        return 2
    configure_logging(args.quiet, args.verbose)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:  # what a command finished is already written (transcribe writes as it goes)
        print(f"phoenix-npu {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an optional extra not installed: say which, not a traceback
        message = missing_message(exc)
        if message is None:
            raise
        print(f"phoenix-npu {args.command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
