"""The file names of a Whisper ONNX export (Optimum's layout): what export writes and
quantize, transcribe and the faster-whisper encoder read."""

ENCODER = "encoder_model.onnx"
DECODER = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_MERGED = "decoder_model_merged.onnx"
