#!/usr/bin/env python3
"""WER of Whisper with the encoder on PhoenixNPU vs ORT's FP32 CPU EP over shared/speech.
See python/phoenix_npu/whisper/wer.py; e.g. `python tools/wer.py --models tiny.en base --device emulator`."""
import sys
from pathlib import Path

try:
    from phoenix_npu.whisper.wer import main
except ImportError:  # running from a source tree without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    from phoenix_npu.whisper.wer import main

if __name__ == "__main__":
    sys.exit(main())
