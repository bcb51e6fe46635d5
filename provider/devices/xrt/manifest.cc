// The kernel manifest loader and its small JSON parser (no third-party code). See manifest.h for
// what a manifest is and the limits a file must stay within.
#include "devices/xrt/manifest.h"

#include "common/kernel_kinds.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "counters.h"  // EscapeJson

namespace phoenix::xrt_device {
namespace {

constexpr int kMaxDepth = 32;  // a manifest is 4 levels deep; anything deeper is not one

// --- A minimal JSON value and parser (RFC 8259; numbers as double) -----------------------------
struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool b = false;
  double num = 0.0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keeps file order
  int line = 0, col = 0;                          // where the value starts

  const Json* Get(const std::string& key) const {
    for (const auto& kv : obj)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
};

// Printable form of a byte for error messages (never copies invalid UTF-8 into a message).
std::string ByteName(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", u);
  return buf;
}

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  bool Parse(Json* out, std::string* error) {
    SkipSpace();
    if (!Value(out, 0)) {
      *error = error_;
      return false;
    }
    SkipSpace();
    if (i_ != s_.size()) {
      Fail("unexpected text after the top-level value");
      *error = error_;
      return false;
    }
    return true;
  }

 private:
  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = "line " + std::to_string(line_) + ", column " + std::to_string(col_) + ": " + what;
    return false;
  }
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool AtEnd() const { return i_ >= s_.size(); }
  void Advance() {
    if (i_ >= s_.size()) return;
    if (s_[i_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++i_;
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) Advance();
  }
  bool Literal(const char* word) {
    for (const char* p = word; *p; ++p) {
      if (Peek() != *p) return Fail(std::string("invalid literal (expected '") + word + "')");
      Advance();
    }
    return true;
  }

  bool Value(Json* v, int depth) {
    if (depth > kMaxDepth) return Fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    v->line = line_;
    v->col = col_;
    if (AtEnd()) return Fail("unexpected end of file");
    char c = Peek();
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') {
      v->type = Json::kString;
      return String(&v->str);
    }
    if (c == 't') { v->type = Json::kBool; v->b = true; return Literal("true"); }
    if (c == 'f') { v->type = Json::kBool; v->b = false; return Literal("false"); }
    if (c == 'n') { v->type = Json::kNull; return Literal("null"); }
    if (c == '-' || (c >= '0' && c <= '9')) return Number(v);
    return Fail("unexpected character " + ByteName(c));
  }

  bool Object(Json* v, int depth) {
    v->type = Json::kObject;
    Advance();  // {
    SkipSpace();
    if (Peek() == '}') { Advance(); return true; }
    for (;;) {
      SkipSpace();
      if (Peek() != '"') return Fail("expected a string key in an object");
      std::string key;
      if (!String(&key)) return false;
      for (const auto& kv : v->obj)
        if (kv.first == key) return Fail("duplicate key \"" + key + "\"");
      SkipSpace();
      if (Peek() != ':') return Fail("expected ':' after key \"" + key + "\"");
      Advance();
      SkipSpace();
      Json child;
      if (!Value(&child, depth + 1)) return false;
      v->obj.emplace_back(std::move(key), std::move(child));
      SkipSpace();
      if (Peek() == ',') { Advance(); continue; }
      if (Peek() == '}') { Advance(); return true; }
      return Fail("expected ',' or '}' in an object");
    }
  }

  bool Array(Json* v, int depth) {
    v->type = Json::kArray;
    Advance();  // [
    SkipSpace();
    if (Peek() == ']') { Advance(); return true; }
    for (;;) {
      SkipSpace();
      Json child;
      if (!Value(&child, depth + 1)) return false;
      v->arr.push_back(std::move(child));
      SkipSpace();
      if (Peek() == ',') { Advance(); continue; }
      if (Peek() == ']') { Advance(); return true; }
      return Fail("expected ',' or ']' in an array");
    }
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool Hex4(uint32_t* cp) {
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char h = Peek();
      uint32_t d;
      if (h >= '0' && h <= '9') d = h - '0';
      else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      else return Fail("invalid \\u escape");
      *cp = *cp * 16 + d;
      Advance();
    }
    return true;
  }

  // One raw UTF-8 sequence starting at a byte >= 0x80, copied to *out if it is well formed
  // (no overlong forms, no surrogates, nothing above U+10FFFF).
  bool Utf8(std::string* out) {
    const unsigned char lead = static_cast<unsigned char>(Peek());
    int len;
    uint32_t cp, min;
    if (lead >= 0xC2 && lead <= 0xDF) { len = 2; cp = lead & 0x1F; min = 0x80; }
    else if (lead >= 0xE0 && lead <= 0xEF) { len = 3; cp = lead & 0x0F; min = 0x800; }
    else if (lead >= 0xF0 && lead <= 0xF4) { len = 4; cp = lead & 0x07; min = 0x10000; }
    else return Fail("invalid UTF-8 byte " + ByteName(static_cast<char>(lead)) + " in a string");
    if (i_ + len > s_.size()) return Fail("truncated UTF-8 sequence in a string");
    for (int k = 1; k < len; ++k) {
      const unsigned char cont = static_cast<unsigned char>(s_[i_ + k]);
      if ((cont & 0xC0) != 0x80) return Fail("invalid UTF-8 sequence in a string");
      cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return Fail("invalid UTF-8 sequence in a string");
    out->append(s_, i_, len);
    for (int k = 0; k < len; ++k) Advance();
    return true;
  }

  bool String(std::string* out) {
    Advance();  // opening quote
    for (;;) {
      if (AtEnd()) return Fail("unterminated string");
      char c = Peek();
      if (c == '"') { Advance(); return true; }
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in a string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        if (!Utf8(out)) return false;
        continue;
      }
      if (c != '\\') { out->push_back(c); Advance(); continue; }
      Advance();
      if (AtEnd()) return Fail("unterminated string");
      char e = Peek();
      Advance();
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("unpaired surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
            uint32_t lo;
            if (Peek() != '\\') return Fail("unpaired surrogate in \\u escape");
            Advance();
            if (Peek() != 'u') return Fail("unpaired surrogate in \\u escape");
            Advance();
            if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return Fail("invalid surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return Fail("invalid escape " + ByteName(e));
      }
    }
  }

  bool Number(Json* v) {
    v->type = Json::kNumber;
    size_t start = i_;
    if (Peek() == '-') Advance();
    if (Peek() == '0') {
      Advance();
    } else if (Peek() >= '1' && Peek() <= '9') {
      while (Peek() >= '0' && Peek() <= '9') Advance();
    } else {
      return Fail("invalid number");
    }
    if (Peek() == '.') {
      Advance();
      if (!(Peek() >= '0' && Peek() <= '9')) return Fail("invalid number: digits expected after '.'");
      while (Peek() >= '0' && Peek() <= '9') Advance();
    }
    if (Peek() == 'e' || Peek() == 'E') {
      Advance();
      if (Peek() == '+' || Peek() == '-') Advance();
      if (!(Peek() >= '0' && Peek() <= '9')) return Fail("invalid number: digits expected in exponent");
      while (Peek() >= '0' && Peek() <= '9') Advance();
    }
    v->num = std::strtod(s_.substr(start, i_ - start).c_str(), nullptr);
    if (!std::isfinite(v->num)) return Fail("number out of range");
    return true;
  }

  const std::string& s_;
  size_t i_ = 0;
  int line_ = 1, col_ = 1;
  std::string error_;
};

// --- Field readers with clear messages -----------------------------------------------------------
struct Ctx {
  const std::string& file;
  std::string where;  // "kernels[3] (matmul)"
  Status Err(const Json& at, const std::string& what) const {
    return Status::Error("kernel manifest " + file + ": " + where + (where.empty() ? "" : ": ") + what +
                         " (line " + std::to_string(at.line) + ", column " + std::to_string(at.col) + ")");
  }
};

// Every key of `o` must be one of `allowed`: a misspelt field is an error, not a silent default.
Status OnlyKnownKeys(const Ctx& c, const Json& o, const std::vector<const char*>& allowed) {
  for (const auto& kv : o.obj) {
    bool known = false;
    for (const char* a : allowed) known = known || kv.first == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      return c.Err(kv.second, "unknown field \"" + kv.first + "\" (known: " + list + ")");
    }
  }
  return Status::OK();
}

Status GetString(const Ctx& c, const Json& o, const char* key, bool required, std::string* out) {
  const Json* v = o.Get(key);
  if (!v) return required ? c.Err(o, std::string("missing field \"") + key + "\"") : Status::OK();
  if (v->type != Json::kString) return c.Err(*v, std::string("field \"") + key + "\" must be a string");
  if (required && v->str.empty()) return c.Err(*v, std::string("field \"") + key + "\" is empty");
  *out = v->str;
  return Status::OK();
}

// Integers are read as doubles: bound them BEFORE the conversion (a cast of 1e300 is undefined).
constexpr double kMaxDim = 1 << 30;

Status GetInt(const Ctx& c, const Json& o, const char* key, bool required, int64_t* out) {
  const Json* v = o.Get(key);
  if (!v) return required ? c.Err(o, std::string("missing field \"") + key + "\"") : Status::OK();
  if (v->type != Json::kNumber || v->num != std::floor(v->num))
    return c.Err(*v, std::string("field \"") + key + "\" must be an integer");
  if (v->num < 1 || v->num > kMaxDim)
    return c.Err(*v, std::string("field \"") + key + "\" must be between 1 and " +
                         std::to_string(static_cast<int64_t>(kMaxDim)));
  *out = static_cast<int64_t>(v->num);
  return Status::OK();
}

Status GetBool(const Ctx& c, const Json& o, const char* key, bool* out) {
  const Json* v = o.Get(key);
  if (!v) return Status::OK();
  if (v->type != Json::kBool) return c.Err(*v, std::string("field \"") + key + "\" must be true or false");
  *out = v->b;
  return Status::OK();
}

Status GetNumber(const Ctx& c, const Json& o, const char* key, double lo, double hi, double* out) {
  const Json* v = o.Get(key);
  if (!v) return Status::OK();
  if (v->type != Json::kNumber) return c.Err(*v, std::string("field \"") + key + "\" must be a number");
  if (!(v->num > lo && v->num < hi))
    return c.Err(*v, std::string("field \"") + key + "\" is out of range");
  *out = v->num;
  return Status::OK();
}

Status OneOf(const Ctx& c, const Json& o, const char* key, const std::string& value,
             std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return Status::OK();
    list += std::string(list.empty() ? "" : ", ") + a;
  }
  const Json* v = o.Get(key);
  return c.Err(v ? *v : o, std::string("field \"") + key + "\" is \"" + value + "\"; expected one of " + list);
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || dir.empty()) return p;
  return dir + "/" + p;
}

// The argument names of each stage, in kernel order: the one definition of the NPU kernels'
// calling convention ("acc" is the FP32 scratch between a GEMM and its epilogue).
std::vector<std::vector<std::string>> ExpectedStages(const ManifestKernel& k) {
  if (k.op == "matmul") {
    std::vector<std::string> epi = {"acc"};
    if (k.bias) epi.push_back("bias");
    if (k.residual) epi.push_back("residual");
    epi.push_back("C");
    return {{"A", "B", "acc"}, epi};
  }
  if (k.op == "layernorm") return {k.beta ? std::vector<std::string>{"x", "gamma", "beta", "y"}
                                          : std::vector<std::string>{"x", "gamma", "y"}};
  return {{"x", "y"}};
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

Status ParseStages(const Ctx& c, const Json& o, const std::string& dir, bool check_artifacts, ManifestKernel* k) {
  const Json* st = o.Get("stages");
  if (!st) return c.Err(o, "missing field \"stages\"");
  const auto want = ExpectedStages(*k);
  if (st->type != Json::kArray || st->arr.size() != want.size())
    return c.Err(*st, "\"stages\" must be an array of " + std::to_string(want.size()) + " stage object(s) for " + k->op);
  for (size_t s = 0; s < want.size(); ++s) {
    const Json& so = st->arr[s];
    Ctx sc{c.file, c.where + ": stages[" + std::to_string(s) + "]"};
    if (so.type != Json::kObject) return sc.Err(so, "each stage must be an object");
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(sc, so, {"kernel_name", "insts", "args", "xclbin"}));
    ManifestStage stage;
    PHX_RETURN_IF_ERROR(GetString(sc, so, "kernel_name", true, &stage.kernel_name));
    PHX_RETURN_IF_ERROR(GetString(sc, so, "insts", true, &stage.insts));
    PHX_RETURN_IF_ERROR(GetString(sc, so, "xclbin", false, &stage.xclbin));
    if (!stage.xclbin.empty()) stage.xclbin_path = Resolve(dir, stage.xclbin);
    const Json* args = so.Get("args");
    if (!args) return sc.Err(so, "missing field \"args\"");
    if (args->type != Json::kArray) return sc.Err(*args, "field \"args\" must be an array of strings");
    for (const Json& a : args->arr) {
      if (a.type != Json::kString) return sc.Err(a, "field \"args\" must be an array of strings");
      stage.args.push_back(a.str);
    }
    if (stage.args != want[s])
      return sc.Err(*args, "\"args\" is [" + Join(stage.args) + "]; this stage needs [" + Join(want[s]) + "] in that order");
    stage.insts_path = Resolve(dir, stage.insts);
    if (check_artifacts && !FileExists(stage.insts_path))
      return sc.Err(*so.Get("insts"), "instruction file not found: " + stage.insts_path +
                                          " (built with the xclbin by `make` in kernels/, see kernels/README.md)");
    k->stages.push_back(std::move(stage));
  }
  return Status::OK();
}

Status ParseKernel(const Ctx& c, const Json& o, const std::string& dir, bool check_artifacts, ManifestKernel* k) {
  if (o.type != Json::kObject) return c.Err(o, "each kernel must be an object");
  PHX_RETURN_IF_ERROR(GetString(c, o, "op", true, &k->op));
  PHX_RETURN_IF_ERROR(OneOf(c, o, "op", k->op, {"matmul", "layernorm", "softmax", "gelu"}));
  if (k->op == "matmul")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "scale", "stages", "M", "K", "N", "batch", "b_layout",
                                             "epilogue", "bias", "residual"}));
  else if (k->op == "layernorm")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "stages", "rows", "cols", "beta", "epsilon"}));
  else if (k->op == "softmax")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "scale", "stages", "rows", "cols"}));
  else
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "stages", "n", "mode"}));
  PHX_RETURN_IF_ERROR(GetString(c, o, "dtype", false, &k->dtype));
  PHX_RETURN_IF_ERROR(OneOf(c, o, "dtype", k->dtype, {"bf16"}));
  PHX_RETURN_IF_ERROR(GetNumber(c, o, "scale", -1e30, 1e30, &k->scale));
  if (k->op == "matmul") {
    PHX_RETURN_IF_ERROR(GetInt(c, o, "M", true, &k->M));
    PHX_RETURN_IF_ERROR(GetInt(c, o, "K", true, &k->K));
    PHX_RETURN_IF_ERROR(GetInt(c, o, "N", true, &k->N));
    PHX_RETURN_IF_ERROR(GetInt(c, o, "batch", false, &k->batch));
    if (static_cast<double>(k->batch) * k->M * k->N > kMaxDim * 16)
      return c.Err(o, "batch x M x N is too large for an NPU kernel");
    PHX_RETURN_IF_ERROR(GetString(c, o, "b_layout", false, &k->b_layout));
    PHX_RETURN_IF_ERROR(OneOf(c, o, "b_layout", k->b_layout, {"row_major", "col_major"}));
    PHX_RETURN_IF_ERROR(GetString(c, o, "epilogue", false, &k->epilogue));
    PHX_RETURN_IF_ERROR(OneOf(c, o, "epilogue", k->epilogue, {"none", "gelu_erf", "gelu_tanh"}));
    PHX_RETURN_IF_ERROR(GetBool(c, o, "bias", &k->bias));
    PHX_RETURN_IF_ERROR(GetBool(c, o, "residual", &k->residual));
  } else if (k->op == "layernorm" || k->op == "softmax") {
    PHX_RETURN_IF_ERROR(GetInt(c, o, "rows", true, &k->rows));
    PHX_RETURN_IF_ERROR(GetInt(c, o, "cols", true, &k->cols));
    if (k->op == "layernorm") {
      PHX_RETURN_IF_ERROR(GetBool(c, o, "beta", &k->beta));
      PHX_RETURN_IF_ERROR(GetNumber(c, o, "epsilon", 0.0, 1.0, &k->epsilon));
    }
  } else {  // gelu
    PHX_RETURN_IF_ERROR(GetInt(c, o, "n", true, &k->n));
    PHX_RETURN_IF_ERROR(GetString(c, o, "mode", false, &k->mode));
    PHX_RETURN_IF_ERROR(OneOf(c, o, "mode", k->mode, {"erf", "tanh"}));
  }
  return ParseStages(c, o, dir, check_artifacts, k);
}

bool Near(double a, double b, double rel) { return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + 1e-30; }

int64_t Prod(const TensorView& v, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= v.shape[i];
  return n;
}

// B seen as the transpose of a contiguous [batch, N, K] tensor.
bool IsTransposedContiguous(const TensorView& b, int64_t K, int64_t N) {
  if (b.rank < 2) return false;
  if (b.strides[b.rank - 2] != 1 && K != 1) return false;
  if (b.strides[b.rank - 1] != K && N != 1) return false;
  int64_t s = K * N;
  for (int i = b.rank - 3; i >= 0; --i) {
    if (b.shape[i] != 1 && b.strides[i] != s) return false;
    s *= b.shape[i];
  }
  return true;
}

}  // namespace

std::string ManifestKernel::Describe() const {
  std::ostringstream s;
  s << op << " ";
  if (op == "matmul") {
    if (batch > 1) s << batch << "x";
    s << M << "x" << K << "x" << N;
    if (b_layout == "col_major") s << " B^T";
    if (bias) s << " +bias";
    if (epilogue != "none") s << " " << epilogue;
    if (residual) s << " +residual";
    if (scale != 1.0) s << " alpha=" << scale;
  } else if (op == "gelu") {
    s << n << " " << mode;
  } else {
    s << rows << "x" << cols;
    if (op == "softmax" && scale != 1.0) s << " scale=" << scale;
  }
  return s.str();
}

std::string Manifest::ToJson() const {
  std::ostringstream s;
  s.precision(17);
  auto q = [](const std::string& v) { return "\"" + EscapeJson(v) + "\""; };
  s << "{\"version\":" << version << ",\"device\":" << q(device) << ",\"path\":" << q(path)
    << ",\"xclbin\":" << q(xclbin) << ",\"xclbin_path\":" << q(xclbin_path)
    << ",\"one_xclbin_built\":" << (one_xclbin_built ? "true" : "false")
    << ",\"per_stage_built\":" << (per_stage_built ? "true" : "false") << ",\"kernels\":[";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const ManifestKernel& k = kernels[i];
    s << (i ? "," : "") << "{\"op\":" << q(k.op) << ",\"describe\":" << q(k.Describe()) << ",\"dtype\":" << q(k.dtype)
      << ",\"scale\":" << k.scale << ",\"batch\":" << k.batch << ",\"M\":" << k.M << ",\"K\":" << k.K << ",\"N\":" << k.N
      << ",\"b_layout\":" << q(k.b_layout) << ",\"epilogue\":" << q(k.epilogue) << ",\"bias\":" << (k.bias ? "true" : "false")
      << ",\"residual\":" << (k.residual ? "true" : "false") << ",\"rows\":" << k.rows << ",\"cols\":" << k.cols
      << ",\"beta\":" << (k.beta ? "true" : "false") << ",\"epsilon\":" << k.epsilon << ",\"n\":" << k.n
      << ",\"mode\":" << q(k.mode) << ",\"scratch_bytes\":" << k.ScratchBytes() << ",\"stages\":[";
    for (size_t j = 0; j < k.stages.size(); ++j) {
      const ManifestStage& st = k.stages[j];
      s << (j ? "," : "") << "{\"kernel_name\":" << q(st.kernel_name) << ",\"insts\":" << q(st.insts)
        << ",\"insts_path\":" << q(st.insts_path) << ",\"xclbin\":" << q(st.xclbin)
        << ",\"xclbin_path\":" << q(st.xclbin_path) << ",\"args\":[";
      for (size_t a = 0; a < st.args.size(); ++a) s << (a ? "," : "") << q(st.args[a]);
      s << "]}";
    }
    s << "]}";
  }
  s << "]}";
  return s.str();
}

Status ParseManifest(const std::string& text, const std::string& path, Manifest* out, bool check_artifacts) {
  Json root;
  std::string err;
  Parser parser(text);
  if (!parser.Parse(&root, &err)) return Status::Error("kernel manifest " + path + " is not valid JSON: " + err);
  Ctx c{path, ""};
  if (root.type != Json::kObject) return c.Err(root, "the top level must be an object");
  const Json* ver = root.Get("version");
  if (!ver) return c.Err(root, "missing field \"version\"");
  if (ver->type != Json::kNumber || ver->num != std::floor(ver->num)) return c.Err(*ver, "\"version\" must be an integer");
  if (ver->num != kManifestVersion) {  // compared as a double: no cast of an arbitrary number
    const std::string shown = std::fabs(ver->num) < 1e9 ? std::to_string(static_cast<long long>(ver->num)) : "(huge)";
    return c.Err(*ver, "version " + shown + " is not supported; this build reads version " +
                           std::to_string(kManifestVersion) + " (rebuild the kernels or update phoenix-npu)");
  }
  PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, root, {"version", "device", "comment", "xclbin", "kernels"}));
  Manifest m;
  m.version = kManifestVersion;
  m.path = path;
  size_t slash = path.find_last_of('/');
  m.dir = slash == std::string::npos ? "." : path.substr(0, slash);
  PHX_RETURN_IF_ERROR(GetString(c, root, "device", false, &m.device));
  if (m.device.empty()) m.device = "npu1";
  if (m.device != "npu1")
    return c.Err(*root.Get("device"), "device \"" + m.device + "\" is not npu1 (Phoenix / Hawk Point)");
  std::string comment;
  PHX_RETURN_IF_ERROR(GetString(c, root, "comment", false, &comment));
  PHX_RETURN_IF_ERROR(GetString(c, root, "xclbin", true, &m.xclbin));
  m.xclbin_path = Resolve(m.dir, m.xclbin);
  m.one_xclbin_built = FileExists(m.xclbin_path);
  const Json* ks = root.Get("kernels");
  if (!ks) return c.Err(root, "missing field \"kernels\"");
  if (ks->type != Json::kArray) return c.Err(*ks, "\"kernels\" must be an array");
  std::set<std::string> names;
  for (size_t i = 0; i < ks->arr.size(); ++i) {
    const Json& o = ks->arr[i];
    std::string op;
    if (o.type == Json::kObject && o.Get("op") && o.Get("op")->type == Json::kString) op = o.Get("op")->str;
    Ctx kc{path, "kernels[" + std::to_string(i) + "]" + (op.empty() ? "" : " (" + op + ")")};
    ManifestKernel k;
    PHX_RETURN_IF_ERROR(ParseKernel(kc, o, m.dir, /*check_artifacts=*/false, &k));  // files: below
    for (const ManifestStage& st : k.stages)
      if (!names.insert(st.kernel_name).second)
        return kc.Err(o, "kernel_name \"" + st.kernel_name + "\" is used twice (each xclbin kernel has its own name)");
    m.kernels.push_back(std::move(k));
  }
  m.per_stage_built = !m.kernels.empty();
  for (const ManifestKernel& k : m.kernels)
    for (const ManifestStage& st : k.stages)
      if (st.xclbin_path.empty() || !FileExists(st.xclbin_path)) m.per_stage_built = false;
  if (check_artifacts && !m.one_xclbin_built && !m.per_stage_built)
    return c.Err(*root.Get("xclbin"), "xclbin not found: " + m.xclbin_path +
                                         " (build it with `make` in kernels/ where mlir-aie and Peano are installed; "
                                         "or every stage's own xclbin for the per-stage mode: `make per-stage`)");
  if (check_artifacts)  // the instruction files, once an xclbin is known to exist (the same parse, with files)
    for (size_t i = 0; i < ks->arr.size(); ++i) {
      Ctx kc{path, "kernels[" + std::to_string(i) + "] (" + m.kernels[i].op + ")"};
      ManifestKernel again;
      PHX_RETURN_IF_ERROR(ParseKernel(kc, ks->arr[i], m.dir, true, &again));
    }
  *out = std::move(m);
  return Status::OK();
}

Status LoadManifest(const std::string& path, Manifest* out, bool check_artifacts) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses anything that is
  // not a regular file (FIFO, device such as /dev/zero, directory) before a byte is read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::Error("kernel manifest not found: " + path +
                           " (build the NPU kernels, or pass the manifest path; `phoenix-npu doctor` checks it)");
    return Status::Error("kernel manifest " + path + " cannot be opened: " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Error("kernel manifest " + path + " is not a regular file");
  }
  if (st.st_size > static_cast<off_t>(kMaxManifestBytes)) {
    ::close(fd);
    return Status::Error("kernel manifest " + path + " is larger than " + std::to_string(kMaxManifestBytes) +
                         " bytes; a manifest lists tens of kernels (is this the right file?)");
  }
  std::string text;
  text.resize(static_cast<size_t>(st.st_size) + 1);  // +1 notices a file that grew meanwhile
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t r = ::read(fd, &text[got], text.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status::Error("kernel manifest " + path + " cannot be read: " + why);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got > static_cast<size_t>(st.st_size)) return Status::Error("kernel manifest " + path + " changed while it was read");
  text.resize(got);
  return ParseManifest(text, path, out, check_artifacts);
}

const ManifestKernel* Manifest::Find(const KernelCall& call, std::string* why_not) const {
  auto no = [&](const std::string& why) -> const ManifestKernel* {
    if (why_not) *why_not = why;
    return nullptr;
  };
  const TensorView& y = call.out.view;
  if (!call.out.present() || !y.IsContiguous()) return no("the NPU kernels write contiguous outputs only");
  std::string closest;
  for (const ManifestKernel& k : kernels) {
    switch (call.kind()) {
      case KernelKind::kMatMul: {
        if (k.op != "matmul") continue;
        const TensorView& a = call.in[0].view;
        const TensorView& b = call.in[1].view;
        if (a.rank < 2 || b.rank < 2 || y.rank < 2) return no("matmul operands must have rank >= 2");
        int64_t M = y.shape[y.rank - 2], N = y.shape[y.rank - 1], K = a.shape[a.rank - 1];
        int64_t batch = Prod(y, 0, y.rank - 2);
        bool b_shared = Prod(b, 0, b.rank - 2) == 1;  // a weight: fold the batch into M
        if (b_shared && a.IsContiguous()) {
          M *= batch;
          batch = 1;
        }
        if (!a.IsContiguous()) return no("matmul: A is not contiguous (the NPU kernels read row-major A)");
        bool row_major = b.IsContiguous();
        bool col_major = !row_major && IsTransposedContiguous(b, K, N);
        if (!row_major && !col_major) return no("matmul: B is neither row-major nor a transposed row-major tensor");
        if (call.in[3].present() && !call.in[3].view.IsContiguous()) return no("matmul: residual is not contiguous");
        const kernels::Epilogue e = call.Params<MatMulParams>().epilogue;
        const char* epi = e == kernels::Epilogue::kGeluErf ? "gelu_erf" : e == kernels::Epilogue::kGeluTanh ? "gelu_tanh" : "none";
        if (k.M == M && k.K == K && k.N == N && k.batch == batch) {
          closest = k.Describe();
          if (k.b_layout != (row_major ? "row_major" : "col_major")) continue;
          if (k.epilogue != epi || k.bias != call.in[2].present() || k.residual != call.in[3].present()) continue;
          if (!Near(k.scale, call.Params<MatMulParams>().alpha, 1e-6)) continue;
          return &k;
        }
        break;
      }
      case KernelKind::kLayerNorm: {
        if (k.op != "layernorm") continue;
        const TensorView& x = call.in[0].view;
        if (!x.IsContiguous() || x.rank < 1) return no("layernorm: x is not contiguous");
        int64_t cols = x.shape[x.rank - 1], rows = Prod(x, 0, x.rank - 1);
        if (k.rows == rows && k.cols == cols) {
          closest = k.Describe();
          if (k.beta != call.in[2].present() || !Near(k.epsilon, call.Params<LayerNormParams>().epsilon, 1e-3)) continue;
          return &k;
        }
        break;
      }
      case KernelKind::kSoftmax: {
        if (k.op != "softmax") continue;
        const TensorView& x = call.in[0].view;
        if (!x.IsContiguous() || x.rank < 1) return no("softmax: x is not contiguous");
        int64_t cols = x.shape[x.rank - 1], rows = Prod(x, 0, x.rank - 1);
        if (k.rows == rows && k.cols == cols) {
          closest = k.Describe();
          if (!Near(k.scale, call.Params<SoftmaxParams>().scale, 1e-6)) continue;
          return &k;
        }
        break;
      }
      case KernelKind::kGelu: {
        if (k.op != "gelu") continue;
        if (!call.in[0].view.IsContiguous()) return no("gelu: x is not contiguous");
        if (k.n == call.in[0].view.NumElements() && k.mode == (call.Params<GeluParams>().mode == kernels::GeluMode::kTanh ? "tanh" : "erf")) return &k;
        break;
      }
      default:
        return no(std::string("no NPU kernel for ") + KernelKindName(call.kind()) + " (runs on the emulated device)");
    }
  }
  return no(std::string("the kernel manifest has no ") + KernelKindName(call.kind()) + " kernel for this shape" +
            (closest.empty() ? "" : " and options (closest: " + closest + ")"));
}

}  // namespace phoenix::xrt_device
