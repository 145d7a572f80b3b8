#include "stages/common/t5/torch_checkpoint.hpp"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace {

// A Python object as far as a state-dict pickle needs one.
struct PyObject;
using PyRef = std::shared_ptr<PyObject>;
struct PyObject {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Tensor };
  Kind kind = Kind::None;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;                                  // Str, Bytes, Global ("module.name")
  std::vector<PyRef> items;                          // Tuple, List
  std::vector<std::pair<PyRef, PyRef>> entries;      // Dict (insertion order)
  at::Tensor tensor;                                 // Tensor (also a loaded storage)
};

PyRef make(PyObject::Kind k) {
  auto p = std::make_shared<PyObject>();
  p->kind = k;
  return p;
}

struct StorageType {
  const char* name;
  at::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", at::kFloat},   {"torch.HalfStorage", at::kHalf},
    {"torch.BFloat16Storage", at::kBFloat16}, {"torch.DoubleStorage", at::kDouble},
    {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
    {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
    {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool}};

// Python globals we allow a checkpoint to name; anything else is refused.
constexpr const char* kAllowedGlobals[] = {
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter"};

class StateDictUnpickler {
 public:
  StateDictUnpickler(const std::string& where, caffe2::serialize::PyTorchStreamReader& zip,
                     const std::string& pickle)
      : where_(where), zip_(zip), p_(pickle) {}

  PyRef run() {
    while (true) {
      const std::uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                         // PROTO
        case 0x95: bytes(8); break;                       // FRAME
        case '}': push(make(PyObject::Kind::Dict)); break;
        case ']': push(make(PyObject::Kind::List)); break;
        case ')': push(make(PyObject::Kind::Tuple)); break;
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 't': push(sequence(PyObject::Kind::Tuple, pop_mark())); break;
        case 'l': push(sequence(PyObject::Kind::List, pop_mark())); break;
        case 0x85: case 0x86: case 0x87: {                // TUPLE1..3
          std::size_t n = op - 0x84;
          need(n);
          std::vector<PyRef> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(sequence(PyObject::Kind::Tuple, std::move(items)));
          break;
        }
        case 'd': {                                        // DICT
          auto items = pop_mark();
          auto d = make(PyObject::Kind::Dict);
          set_items(d, items);
          push(d);
          break;
        }
        case 'a': {                                        // APPEND
          auto v = pop();
          list_top()->items.push_back(v);
          break;
        }
        case 'e': {                                        // APPENDS
          auto items = pop_mark();
          auto l = list_top();
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {                                        // SETITEM
          auto v = pop();
          auto k = pop();
          dict_top()->entries.emplace_back(k, v);
          break;
        }
        case 'u': {                                        // SETITEMS
          auto items = pop_mark();
          set_items(dict_top(), items);
          break;
        }
        case 'N': push(make(PyObject::Kind::None)); break;
        case 0x88: case 0x89: {                            // NEWTRUE / NEWFALSE
          auto b = make(PyObject::Kind::Bool);
          b->integer = op == 0x88;
          push(b);
          break;
        }
        case 'K': push_int(byte()); break;                 // BININT1
        case 'M': push_int(little(2)); break;              // BININT2
        case 'J': push_int(static_cast<std::int32_t>(little(4))); break;  // BININT
        case 0x8a: {                                       // LONG1
          std::size_t n = byte();
          if (n > 8) fail("integer too large");
          std::uint64_t v = little(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1) & 1)) v |= ~std::uint64_t(0) << (8 * n);  // sign-extend
          push_int(static_cast<std::int64_t>(v));
          break;
        }
        case 'G': {                                        // BINFLOAT (big-endian)
          std::string b = bytes(8);
          std::uint64_t bits = 0;
          for (unsigned char c : b) bits = bits << 8 | c;
          auto f = make(PyObject::Kind::Float);
          std::memcpy(&f->real, &bits, 8);
          push(f);
          break;
        }
        case 'X': push_text(PyObject::Kind::Str, little(4)); break;     // BINUNICODE
        case 0x8c: push_text(PyObject::Kind::Str, byte()); break;       // SHORT_BINUNICODE
        case 0x8d: push_text(PyObject::Kind::Str, little(8)); break;    // BINUNICODE8
        case 'B': push_text(PyObject::Kind::Bytes, little(4)); break;   // BINBYTES
        case 'C': push_text(PyObject::Kind::Bytes, byte()); break;      // SHORT_BINBYTES
        case 'q': memo_[byte()] = top(); break;                         // BINPUT
        case 'r': memo_[little(4)] = top(); break;                      // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;                  // MEMOIZE
        case 'h': push(memo_get(byte())); break;                        // BINGET
        case 'j': push(memo_get(little(4))); break;                     // LONG_BINGET
        case 'c': {                                                     // GLOBAL
          std::string module = line();
          push(global(module + "." + line()));
          break;
        }
        case 0x93: {                                                    // STACK_GLOBAL
          auto name = pop();
          auto module = pop();
          push(global(module->text + "." + name->text));
          break;
        }
        case 'R': case 0x81: {                                          // REDUCE / NEWOBJ
          auto args = pop();
          auto callable = pop();
          push(call(callable, args));
          break;
        }
        case 'b': pop(); break;  // BUILD: object state (an OrderedDict's _metadata); not needed
        case 'Q': push(persistent_load(pop())); break;                  // BINPERSID
        case '.': return pop();                                         // STOP
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + hex);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(where_, "cannot read checkpoint: " + why + " (data.pkl offset " + std::to_string(pos_) + ")",
                "save the weights with torch.save(model.state_dict(), ...) or convert them to model.safetensors");
  }
  std::uint8_t byte() {
    if (pos_ >= p_.size()) fail("pickle ends early");
    return static_cast<std::uint8_t>(p_[pos_++]);
  }
  std::string bytes(std::uint64_t n) {
    if (n > p_.size() - pos_) fail("pickle ends early");
    std::string s = p_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::uint64_t little(std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(byte()) << (8 * i);
    return v;
  }
  std::string line() {
    auto end = p_.find('\n', pos_);
    if (end == std::string::npos) fail("unterminated GLOBAL");
    std::string s = p_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void push(PyRef v) { stack_.push_back(std::move(v)); }
  void push_int(std::int64_t v) {
    auto i = make(PyObject::Kind::Int);
    i->integer = v;
    push(i);
  }
  void push_text(PyObject::Kind k, std::uint64_t n) {
    auto s = make(k);
    s->text = bytes(n);
    push(s);
  }
  void need(std::size_t n) const {
    std::size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("stack underflow");
  }
  PyRef pop() {
    need(1);
    PyRef v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyRef top() const {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) fail("missing MARK");
    std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyRef memo_get(std::uint64_t key) const {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " unknown");
    return it->second;
  }
  static PyRef sequence(PyObject::Kind k, std::vector<PyRef> items) {
    auto s = make(k);
    s->items = std::move(items);
    return s;
  }
  PyRef dict_top() const {
    PyRef d = top();
    if (d->kind != PyObject::Kind::Dict) fail("SETITEM on a non-dict");
    return d;
  }
  PyRef list_top() const {
    PyRef l = top();
    if (l->kind != PyObject::Kind::List) fail("APPEND on a non-list");
    return l;
  }
  void set_items(const PyRef& d, const std::vector<PyRef>& items) const {
    if (items.size() % 2) fail("odd number of dict items");
    for (std::size_t i = 0; i < items.size(); i += 2) d->entries.emplace_back(items[i], items[i + 1]);
  }

  PyRef global(const std::string& name) const {
    bool ok = false;
    for (const char* g : kAllowedGlobals) ok = ok || name == g;
    for (const auto& s : kStorageTypes) ok = ok || name == s.name;
    if (!ok) fail("refusing Python global '" + name + "' (only state dicts of tensors are loaded)");
    auto g = make(PyObject::Kind::Global);
    g->text = name;
    return g;
  }

  static std::vector<std::int64_t> int_tuple(const PyRef& t) {
    std::vector<std::int64_t> out;
    for (const auto& v : t->items) out.push_back(v->integer);
    return out;
  }

  PyRef call(const PyRef& callable, const PyRef& args) {
    if (callable->kind != PyObject::Kind::Global || args->kind != PyObject::Kind::Tuple)
      fail("REDUCE on something that is not an allowed global");
    const auto& a = args->items;
    if (callable->text == "collections.OrderedDict") return make(PyObject::Kind::Dict);
    if (callable->text == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0]->kind != PyObject::Kind::Tensor) fail("bad _rebuild_parameter arguments");
      return a[0];
    }
    if (callable->text == "torch._utils._rebuild_tensor_v2") {
      if (a.size() < 4 || a[0]->kind != PyObject::Kind::Tensor || a[1]->kind != PyObject::Kind::Int ||
          a[2]->kind != PyObject::Kind::Tuple || a[3]->kind != PyObject::Kind::Tuple)
        fail("bad _rebuild_tensor_v2 arguments");
      const at::Tensor& storage = a[0]->tensor;
      auto sizes = int_tuple(a[2]);
      auto strides = int_tuple(a[3]);
      if (sizes.size() != strides.size()) fail("tensor sizes and strides differ in rank");
      // Bounds-check the view before making it: the checkpoint is untrusted input.
      std::int64_t last = a[1]->integer;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] < 0 || strides[i] < 0) fail("negative tensor size or stride");
        if (sizes[i] == 0) last = -1;
        if (last >= 0) last += (sizes[i] - 1) * strides[i];
      }
      if (a[1]->integer < 0 || last >= storage.numel()) fail("tensor view exceeds its storage");
      auto t = make(PyObject::Kind::Tensor);
      t->tensor = storage.as_strided(sizes, strides, a[1]->integer).contiguous();
      return t;
    }
    fail("cannot call '" + callable->text + "'");
  }

  PyRef persistent_load(const PyRef& pid) {
    // ('storage', torch.FloatStorage, key, location, numel)
    if (pid->kind != PyObject::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->text != "storage" ||
        pid->items[1]->kind != PyObject::Kind::Global || pid->items[2]->kind != PyObject::Kind::Str)
      fail("unexpected persistent id");
    const std::string& key = pid->items[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;  // shared (tied) storage
    at::ScalarType dtype = at::kFloat;
    bool known = false;
    for (const auto& s : kStorageTypes)
      if (pid->items[1]->text == s.name) {
        dtype = s.dtype;
        known = true;
      }
    if (!known) fail("unknown storage type " + pid->items[1]->text);
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) fail("archive lacks storage record " + record);
    auto [data, nbytes] = zip_.getRecord(record);
    const std::size_t elem = at::elementSize(dtype);
    if (nbytes % elem) fail("storage record " + record + " size is not a multiple of its element size");
    auto t = make(PyObject::Kind::Tensor);
    t->tensor = at::empty({static_cast<std::int64_t>(nbytes / elem)}, at::TensorOptions().dtype(dtype));
    std::memcpy(t->tensor.data_ptr(), data.get(), nbytes);
    storages_[key] = t;
    return t;
  }

  std::string where_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  const std::string& p_;
  std::size_t pos_ = 0;
  std::vector<PyRef> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint64_t, PyRef> memo_;
  std::map<std::string, PyRef> storages_;
};

}  // namespace

std::map<std::string, at::Tensor> load_torch_state_dict(const std::filesystem::path& path) {
  const std::string where = path.string();
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(where, "cannot open checkpoint", "check that the file exists and is readable");
    char magic[4] = {};
    in.read(magic, 4);
    if (std::memcmp(magic, "PK\x03\x04", 4) != 0)
      throw Error(where, "not a zip-format PyTorch checkpoint (legacy torch.save format or damaged)",
                  "re-save with a current torch.save, or convert the weights to model.safetensors");
  }
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  std::string pickle;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(where);
    auto [data, size] = zip->getRecord("data.pkl");
    pickle.assign(static_cast<const char*>(data.get()), size);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw Error(where, "damaged checkpoint archive: " + msg.substr(0, msg.find('\n')),
                "download or save the file again");
  }
  try {
    PyRef root = StateDictUnpickler(where, *zip, pickle).run();
    if (root->kind != PyObject::Kind::Dict)
      throw Error(where, "checkpoint top level is not a dict of tensors", "save model.state_dict()");
    std::map<std::string, at::Tensor> out;
    for (const auto& [k, v] : root->entries)
      if (k->kind == PyObject::Kind::Str && v->kind == PyObject::Kind::Tensor) out[k->text] = v->tensor;
    return out;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw Error(where, "damaged checkpoint: " + msg.substr(0, msg.find('\n')), "download or save the file again");
  }
}

}  // namespace lvmflow
