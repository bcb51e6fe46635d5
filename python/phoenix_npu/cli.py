"""The `phoenix-npu` command. Each subcommand lives in its own module, which defines
`add_arguments(parser)` and `run(args) -> int`; modules are imported only when their command
runs, so `phoenix-npu doctor` works without torch installed."""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS = {
    "transcribe": ("phoenix_npu.transcribe", "transcribe audio files with Whisper on PhoenixNPU"),
    "import": ("phoenix_npu.checkpoint", "import a CTranslate2 Whisper checkpoint as a Hugging Face directory"),
    "export": ("phoenix_npu.export", "export Whisper to ONNX with Optimum (opset 17, fixed encoder dims)"),
    "bench": ("phoenix_npu.bench", "benchmark PhoenixNPU against ORT's CPU EP and faster-whisper"),
    "plan": ("phoenix_npu.npu_plan", "print the npu1 tile plan and modelled latency of the Whisper encoder"),
    "doctor": ("phoenix_npu.doctor", "check the NPU driver, XRT, kernel manifest and artifacts"),
    "info": ("phoenix_npu.info", "show the provider library, ORT version and devices"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phoenix-npu", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:  # a missing optional dependency of that command
            p.set_defaults(_missing=str(exc))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"phoenix-npu {args.command}: {args._missing}. "
              "Install the Whisper extras: pip install 'phoenix-npu[whisper]'", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
