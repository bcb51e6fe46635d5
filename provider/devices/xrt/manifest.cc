// The kernel manifest loader: nlohmann/json parses (provided by Debian's nlohmann-json3-dev,
// installed by scripts/setup.sh; MIT, LICENSES/), this file checks every field. See manifest.h for
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
#include <iterator>
#include <set>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "counters.h"  // EscapeJson

namespace phoenix::xrt_device {
namespace {

constexpr int kMaxDepth = 32;  // open arrays / objects; a manifest nests 6 deep, anything deeper is not one

// --- The parsed document: nlohmann/json's SAX parser (linear time, RFC 8259, UTF-8 checked) builds
// this small tree, which keeps what the field readers need and nlohmann's DOM does not: file
// order, duplicate keys refused, the nesting bound, and where each value is for error messages.
struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool b = false;
  double num = 0.0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keeps file order
  int line = 0, col = 0;                          // an array / object: its bracket; else where it ends

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

// Line and column of the next byte the parser reads, kept up to date by the iterator it reads
// through (one step per byte: linear, and exact where nlohmann reports only a byte count).
struct Cursor {
  int line = 1, col = 1;
};

class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  CountingIterator(const char* p, Cursor* cursor) : p_(p), cursor_(cursor) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    if (*p_ == '\n') {
      ++cursor_->line;
      cursor_->col = 1;
    } else {
      ++cursor_->col;
    }
    ++p_;
    return *this;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  Cursor* cursor_;
};

class TreeBuilder {
 public:
  using json = nlohmann::json;
  TreeBuilder(const std::string& text, Json* root, const Cursor* cursor) : text_(text), root_(root), cursor_(cursor) {}

  bool null() { return Leaf(Json::kNull); }
  bool boolean(bool v) { return Leaf(Json::kBool)->b = v, true; }
  bool number_integer(json::number_integer_t v) { return Leaf(Json::kNumber)->num = static_cast<double>(v), true; }
  bool number_unsigned(json::number_unsigned_t v) { return Leaf(Json::kNumber)->num = static_cast<double>(v), true; }
  bool number_float(json::number_float_t v, const json::string_t&) { return Leaf(Json::kNumber)->num = v, true; }
  bool string(json::string_t& v) { return Leaf(Json::kString)->str = std::move(v), true; }
  bool binary(json::binary_t&) { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return Open(Json::kObject); }
  bool start_array(std::size_t) { return Open(Json::kArray); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(json::string_t& k) {
    if (!keys_.back().insert(k).second) return Fail("duplicate key \"" + k + "\"");
    open_.back()->obj.emplace_back(std::move(k), Json());
    return true;
  }
  // nlohmann's message without its prefix and without "last read: ..." (raw, possibly invalid
  // bytes), in the words this parser always used; position counts the bytes read (1-based).
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    std::string why = ex.what();
    const size_t col = why.find(", column ");
    if (col != std::string::npos && why.find(": ", col) != std::string::npos) why = why.substr(why.find(": ", col) + 2);
    else if (why.find("] ") != std::string::npos) why = why.substr(why.find("] ") + 2);
    const size_t last = why.find("; last read");
    if (last != std::string::npos) why.resize(last);
    if (why.find("ill-formed UTF-8") != std::string::npos && position >= 1 && position <= text_.size())
      why = "invalid UTF-8 byte " + ByteName(text_[position - 1]) + " in a string";
    else if (why.find("surrogate U+") != std::string::npos)
      why = "unpaired surrogate in \\u escape (" + why.substr(why.find("surrogate U+")) + ")";
    else if (why.find("number overflow") != std::string::npos)
      why = "number out of range";
    return Fail(why, /*one_back=*/true);
  }

  const std::string& error() const { return error_; }

 private:
  // Where the next value goes: the root, the end of the open array, or the open object's last key.
  Json* Place() {
    if (open_.empty()) return root_;
    Json* top = open_.back();
    if (top->type == Json::kArray) {
      top->arr.emplace_back();
      return &top->arr.back();
    }
    return &top->obj.back().second;
  }
  Json* Leaf(Json::Type t) {
    Json* v = Place();
    v->type = t;
    v->line = cursor_->line;
    v->col = cursor_->col;
    return v;
  }
  bool Open(Json::Type t) {
    if (open_.size() >= static_cast<size_t>(kMaxDepth))
      return Fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels (a manifest is 6 deep)", true);
    Json* v = Leaf(t);
    v->col -= 1;  // the bracket just read
    open_.push_back(v);  // pointers stay valid: a parent's vector grows only while it is on top
    if (t == Json::kObject) keys_.emplace_back();
    return true;
  }
  bool Close() {
    if (open_.back()->type == Json::kObject) keys_.pop_back();
    open_.pop_back();
    return true;
  }
  bool Fail(const std::string& what, bool one_back = false) {
    if (error_.empty())
      error_ = "line " + std::to_string(cursor_->line) + ", column " +
               std::to_string(std::max(1, cursor_->col - (one_back ? 1 : 0))) + ": " + what;
    return false;
  }

  const std::string& text_;
  Json* root_;
  const Cursor* cursor_;
  std::vector<Json*> open_;
  std::vector<std::unordered_set<std::string>> keys_;  // per open object: duplicates in O(1)
  std::string error_;
};

// Parses `text` into *out, or says where and why not.
bool ParseJson(const std::string& text, Json* out, std::string* error) {
  // nlohmann stops at a NUL byte as at the end of input: the rest would be silently ignored.
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    const size_t nl = text.rfind('\n', nul);
    const size_t line = 1 + std::count(text.begin(), text.begin() + nul, '\n');
    *error = "line " + std::to_string(line) + ", column " +
             std::to_string(nl == std::string::npos ? nul + 1 : nul - nl) + ": unexpected character 0x00";
    return false;
  }
  Cursor cursor;
  TreeBuilder builder(text, out, &cursor);
  const char* begin = text.data();
  const bool ok = nlohmann::json::sax_parse(CountingIterator(begin, &cursor),
                                            CountingIterator(begin + text.size(), &cursor), &builder);
  if (!ok) *error = builder.error().empty() ? "not JSON" : builder.error();
  return ok;
}

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
  if (k.op == "matmul_int8") {  // docs/npu.md 2d: quantize A, INT8 GEMM, dequantizing epilogue
    std::vector<std::string> epi = {"acc", "colparams"};
    if (k.residual) epi.push_back("residual");
    epi.push_back("C");
    return {{"A", "qparams", "qa"}, {"qa", "B", "acc"}, epi};
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
  PHX_RETURN_IF_ERROR(OneOf(c, o, "op", k->op, {"matmul", "matmul_int8", "layernorm", "softmax", "gelu"}));
  const bool mm = k->op == "matmul" || k->op == "matmul_int8";
  if (k->op == "matmul_int8")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "scale", "stages", "M", "K", "N", "batch", "b_layout",
                                             "epilogue", "bias", "residual", "weight_zero_points"}));
  else if (mm)
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "scale", "stages", "M", "K", "N", "batch", "b_layout",
                                             "epilogue", "bias", "residual"}));
  else if (k->op == "layernorm")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "stages", "rows", "cols", "beta", "epsilon"}));
  else if (k->op == "softmax")
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "scale", "stages", "rows", "cols"}));
  else
    PHX_RETURN_IF_ERROR(OnlyKnownKeys(c, o, {"op", "dtype", "stages", "n", "mode"}));
  PHX_RETURN_IF_ERROR(GetString(c, o, "dtype", false, &k->dtype));
  if (k->op == "matmul_int8") {
    k->dtype = "int8";
    PHX_RETURN_IF_ERROR(GetString(c, o, "dtype", false, &k->dtype));
    PHX_RETURN_IF_ERROR(OneOf(c, o, "dtype", k->dtype, {"int8"}));
  } else {
    PHX_RETURN_IF_ERROR(OneOf(c, o, "dtype", k->dtype, {"bf16"}));
  }
  PHX_RETURN_IF_ERROR(GetNumber(c, o, "scale", -1e30, 1e30, &k->scale));
  if (mm) {
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
    if (k->op == "matmul_int8") PHX_RETURN_IF_ERROR(GetBool(c, o, "weight_zero_points", &k->weight_zero_points));
    if (k->op == "matmul_int8" && k->K > kernels::kMaxInt8K)
      return c.Err(o, "K above 33025 would overflow the INT8 MatMul's int32 accumulator");
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

// The one size limit, said with what to do (files come from anywhere; see manifest.h).
Status TooLarge(const std::string& path) {
  return Status::Error("kernel manifest " + path + " is larger than " + std::to_string(kMaxManifestBytes) +
                       " bytes (1 MiB), the limit for a manifest: one lists tens of kernels in a few KiB. Check "
                       "that --manifest / PHOENIX_NPU_MANIFEST / the provider option manifest= names the "
                       "manifest.json written by the kernel build (kernels/README.md)");
}

}  // namespace

std::string ManifestKernel::Describe() const {
  std::ostringstream s;
  s << op << " ";
  if (op == "matmul" || op == "matmul_int8") {
    if (batch > 1) s << batch << "x";
    s << M << "x" << K << "x" << N;
    if (b_layout == "col_major") s << " B^T";
    if (bias) s << " +bias";
    if (epilogue != "none") s << " " << epilogue;
    if (residual) s << " +residual";
    if (scale != 1.0) s << " alpha=" << scale;
    if (weight_zero_points) s << " weight-zp";
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
      << ",\"residual\":" << (k.residual ? "true" : "false")
      << ",\"weight_zero_points\":" << (k.weight_zero_points ? "true" : "false") << ",\"rows\":" << k.rows << ",\"cols\":" << k.cols
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
  if (text.size() > kMaxManifestBytes) return TooLarge(path);
  Json root;
  std::string err;
  if (!ParseJson(text, &root, &err)) return Status::Error("kernel manifest " + path + " is not valid JSON: " + err);
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
    return TooLarge(path);
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
  std::string closest, zp_why;
  for (const ManifestKernel& k : kernels) {
    switch (call.kind()) {
      case KernelKind::kMatMul:
      case KernelKind::kMatMulInt8: {
        const bool int8 = call.kind() == KernelKind::kMatMulInt8;
        if (k.op != (int8 ? "matmul_int8" : "matmul")) continue;
        if (int8) {  // what the NPU INT8 stages do not implement runs on the host (kernels/matmul_int8/README.md)
          const MatMulInt8Params& q = call.Params<MatMulInt8Params>();
          if (q.quantize_output) return no("matmul_int8: a fused output QuantizeLinear -> DequantizeLinear has no NPU stage");
        }
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
        const MatMulParams& mp = int8 ? call.Params<MatMulInt8Params>().matmul : call.Params<MatMulParams>();
        const kernels::Epilogue e = mp.epilogue;
        const char* epi = e == kernels::Epilogue::kGeluErf ? "gelu_erf" : e == kernels::Epilogue::kGeluTanh ? "gelu_tanh" : "none";
        if (k.M == M && k.K == K && k.N == N && k.batch == batch) {
          closest = k.Describe();
          if (k.b_layout != (row_major ? "row_major" : "col_major")) continue;
          if (k.epilogue != epi || k.bias != call.in[2].present() || k.residual != call.in[3].present()) continue;
          if (!Near(k.scale, mp.alpha, 1e-6)) continue;
          // weights with zero points need the K' = 2K kernel (docs/npu.md 2d); symmetric ones the plain one
          if (int8 && k.weight_zero_points != call.in[5].present()) {
            zp_why = call.in[5].present()
                         ? "matmul_int8: INT8 weights with zero points need a manifest kernel with \"weight_zero_points\": "
                           "true (the K' = 2K GEMM, docs/npu.md 2d); this shape's kernel takes symmetric weights (" +
                               k.Describe() + ")"
                         : "matmul_int8: symmetric weights; this shape's kernel is for weights with zero points (" +
                               k.Describe() + ")";
            continue;
          }
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
  if (!zp_why.empty()) return no(zp_why);
  return no(std::string("the kernel manifest has no ") + KernelKindName(call.kind()) + " kernel for this shape" +
            (closest.empty() ? "" : " and options (closest: " + closest + ")"));
}

}  // namespace phoenix::xrt_device
