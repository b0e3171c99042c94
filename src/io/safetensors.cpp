// safetensors reader (mmap + strict validation) and atomic writer.
// See safetensors.h for the format and the validation contract.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "kernels/fp_formats.h"

static_assert(std::endian::native == std::endian::little, "kvlab io assumes a little-endian host");

namespace kvlab::io {

namespace {

using json = nlohmann::json;

// Headers larger than this are refused (the reference implementation uses
// the same 100 MB bound); it keeps a corrupt length field from driving a
// huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// Nesting deeper than {name: {key: [n]}} is never valid.
constexpr int kMaxJsonDepth = 3;

struct DTypeRow {
  DType t;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8},        {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},      {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::E8M0, "F8_E8M0", 1},   {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},        {DType::I8, "I8", 1},           {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeRow& row(DType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r;
  KVLAB_ASSERT(false, "DType {} has no table row", static_cast<int>(t));
}

std::string known_dtypes() {
  std::string s;
  for (const auto& r : kDTypes) {
    if (!s.empty()) s += ", ";
    s += r.name;
  }
  return s;
}

// numel(shape) * elem with overflow detection; false on overflow or negative dims.
bool checked_bytes(const std::vector<int64_t>& shape, std::size_t elem, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(elem), &n)) return false;
  *out = n;
  return true;
}

std::string printable(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t json_offset(const json& v, const std::string& where, const std::string& tname) {
  KVLAB_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
              "{}: tensor '{}': data_offsets entries must be non-negative integers, got {}", where, tname,
              printable(v));
  return v.get<uint64_t>();
}

}  // namespace

std::size_t dtype_size(DType t) { return row(t).size; }
std::string_view dtype_name(DType t) { return row(t).name; }

DType dtype_from_name(std::string_view s) {
  for (const auto& r : kDTypes)
    if (r.name == s) return r.t;
  throw Error(fmt::format("unknown safetensors dtype '{}' (expected one of {})", escape_nonprintable(s), known_dtypes()));
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ---------------------------------------------------------------------------
// Reader

struct SafetensorsFile::Impl {
  std::string path;
  void* map = nullptr;
  std::size_t map_len = 0;
  std::vector<std::byte> owned;
  const std::byte* base = nullptr;
  uint64_t size = 0;
  uint64_t header_len = 0;
  const std::byte* data = nullptr;
  uint64_t data_len = 0;
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  ~Impl() {
    if (map) ::munmap(map, map_len);
  }

  void validate();
};

void SafetensorsFile::Impl::validate() {
  const std::string& where = path;
  KVLAB_CHECK(size >= 8, "{}: not a safetensors file: {} bytes, need at least the 8-byte header length", where,
              size);
  header_len = read_u64_le(base);
  KVLAB_CHECK(header_len <= size - 8,
              "{}: header length {} runs past the end of the file ({} bytes): truncated or not safetensors",
              where, header_len, size);
  KVLAB_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} exceeds the {}-byte limit", where,
              header_len, kMaxHeaderBytes);
  KVLAB_CHECK(header_len >= 2, "{}: header length {} is too small for a JSON object", where, header_len);
  const char* hbeg = reinterpret_cast<const char*>(base + 8);
  const char* hend = hbeg + header_len;
  data = base + 8 + header_len;
  data_len = size - 8 - header_len;

  json header;
  try {
    std::set<std::string> top_keys;
    json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth > kMaxJsonDepth)
        throw Error(fmt::format("{}: header JSON nests deeper than {} levels; not a safetensors header", where,
                                kMaxJsonDepth));
      if (ev == json::parse_event_t::key && depth == 1 && !top_keys.insert(parsed.get<std::string>()).second)
        throw Error(fmt::format("{}: tensor '{}' appears twice in the header", where,
                                escape_nonprintable(parsed.get<std::string>())));
      return true;
    };
    header = json::parse(hbeg, hend, depth_guard, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: header is not valid JSON: {}", where, escape_nonprintable(e.what())));
  }
  KVLAB_CHECK(header.is_object(), "{}: header must be a JSON object, got {}", where, header.type_name());

  std::vector<const TensorInfo*> order;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      KVLAB_CHECK(v.is_object(), "{}: __metadata__ must be an object of strings, got {}", where, v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        KVLAB_CHECK(m.value().is_string(), "{}: __metadata__ value for key '{}' must be a string, got {}", where,
                    escape_nonprintable(m.key()), printable(m.value()));
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    KVLAB_CHECK(!name.empty(), "{}: empty tensor name in header", where);
    const std::string shown = escape_nonprintable(name);  // the name as echoed in messages
    KVLAB_CHECK(v.is_object(), "{}: tensor '{}': entry must be an object, got {}", where, shown, printable(v));
    for (auto f = v.begin(); f != v.end(); ++f)
      KVLAB_CHECK(f.key() == "dtype" || f.key() == "shape" || f.key() == "data_offsets",
                  "{}: tensor '{}': unknown key '{}' (expected dtype, shape, data_offsets)", where, shown,
                  escape_nonprintable(f.key()));
    KVLAB_CHECK(v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                "{}: tensor '{}': entry needs dtype, shape and data_offsets", where, shown);
    TensorInfo ti;
    ti.name = name;
    const json& dt = v["dtype"];
    KVLAB_CHECK(dt.is_string(), "{}: tensor '{}': dtype must be a string, got {}", where, shown, printable(dt));
    try {
      ti.dtype = dtype_from_name(dt.get<std::string>());
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor '{}': {}", where, shown, e.what()));
    }
    const json& sh = v["shape"];
    KVLAB_CHECK(sh.is_array(), "{}: tensor '{}': shape must be an array, got {}", where, shown, printable(sh));
    for (const json& d : sh) {
      KVLAB_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                  "{}: tensor '{}': shape entries must be non-negative integers, got {}", where, shown,
                  printable(sh));
      uint64_t u = d.get<uint64_t>();
      KVLAB_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                  "{}: tensor '{}': shape entry {} is too large", where, shown, u);
      ti.shape.push_back(static_cast<int64_t>(u));
    }
    const json& off = v["data_offsets"];
    KVLAB_CHECK(off.is_array() && off.size() == 2, "{}: tensor '{}': data_offsets must be [begin, end], got {}",
                where, shown, printable(off));
    ti.begin = json_offset(off[0], where, shown);
    ti.end = json_offset(off[1], where, shown);
    KVLAB_CHECK(ti.begin <= ti.end, "{}: tensor '{}': data_offsets [{}, {}] has begin > end", where, shown,
                ti.begin, ti.end);
    KVLAB_CHECK(ti.end <= data_len,
                "{}: tensor '{}': data_offsets [{}, {}] out of range: the data buffer has {} bytes", where, shown,
                ti.begin, ti.end, data_len);
    uint64_t want = 0;
    KVLAB_CHECK(checked_bytes(ti.shape, dtype_size(ti.dtype), &want),
                "{}: tensor '{}': shape {} overflows a 64-bit byte count", where, shown, shape_str(ti.shape));
    KVLAB_CHECK(want == ti.end - ti.begin,
                "{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}", where, shown,
                shape_str(ti.shape), dtype_name(ti.dtype), want, ti.begin, ti.end, ti.end - ti.begin);
    auto [pos, inserted] = tensors.emplace(name, std::move(ti));
    KVLAB_ASSERT(inserted, "duplicate key after JSON parse");
    order.push_back(&pos->second);
  }

  // The buffer must be covered exactly: sorted by offset, each tensor
  // starts where the previous one ended, the last ends at the buffer end.
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : order) {
    if (t->begin < cursor)
      throw Error(fmt::format("{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", where,
                              escape_nonprintable(t->name), t->begin, t->end, escape_nonprintable(prev->name),
                              prev->begin, prev->end));
    if (t->begin > cursor)
      throw Error(fmt::format("{}: tensor '{}': data_offsets [{}, {}] leave a gap of {} bytes after offset {}",
                              where, escape_nonprintable(t->name), t->begin, t->end, t->begin - cursor, cursor));
    cursor = t->end;
    prev = t;
  }
  KVLAB_CHECK(cursor == data_len, "{}: the data buffer has {} bytes but the tensors cover only {}", where,
              data_len, cursor);
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(fmt::format("{}: cannot stat: {}", path, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("{}: not a regular file", path));
  }
  impl->size = static_cast<uint64_t>(st.st_size);
  if (impl->size > 0) {
    void* m = ::mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(fmt::format("{}: cannot mmap {} bytes: {}", path, impl->size, std::strerror(e)));
    }
    impl->map = m;
    impl->map_len = impl->size;
    impl->base = static_cast<const std::byte*>(m);
  }
  ::close(fd);
  impl->validate();
  return SafetensorsFile(std::move(impl));
}

SafetensorsFile SafetensorsFile::parse(std::span<const std::byte> image, const std::string& label) {
  auto impl = std::make_unique<Impl>();
  impl->path = label;
  impl->owned.assign(image.begin(), image.end());
  impl->base = impl->owned.data();
  impl->size = impl->owned.size();
  impl->validate();
  return SafetensorsFile(std::move(impl));
}

bool SafetensorsFile::has(const std::string& name) const { return impl_->tensors.count(name) != 0; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->tensors.size());
  for (const auto& [k, v] : impl_->tensors) out.push_back(k);
  return out;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end())
    throw Error(fmt::format("{}: no tensor named '{}' ({} tensors in the file)", impl_->path, escape_nonprintable(name),
                            impl_->tensors.size()));
  return it->second;
}

std::span<const std::byte> SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& t = info(name);
  return {impl_->data + t.begin, static_cast<std::size_t>(t.end - t.begin)};
}

std::vector<float> SafetensorsFile::to_f32(const std::string& name) const {
  const TensorInfo& t = info(name);
  const std::byte* p = impl_->data + t.begin;
  const std::size_t n = static_cast<std::size_t>(t.numel());
  std::vector<float> out(n);
  switch (t.dtype) {
    case DType::F32:
      if (n) std::memcpy(out.data(), p, n * 4);
      break;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::F16:
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.dtype == DType::F16 ? kernels::f16_to_f32(h) : kernels::bf16_to_f32(h);
      }
      break;
    case DType::F8_E4M3:
      for (std::size_t i = 0; i < n; ++i) out[i] = kernels::e4m3_to_f32(static_cast<uint8_t>(p[i]));
      break;
    case DType::E8M0:
      for (std::size_t i = 0; i < n; ++i) out[i] = kernels::e8m0_to_f32(static_cast<uint8_t>(p[i]));
      break;
    default:
      throw Error(fmt::format(
          "{}: tensor '{}': cannot convert dtype {} to float32 (supported: F32, F64, F16, BF16, F8_E4M3, F8_E8M0)",
          impl_->path, name, dtype_name(t.dtype)));
  }
  return out;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->metadata; }
const std::string& SafetensorsFile::path() const { return impl_->path; }
uint64_t SafetensorsFile::header_bytes() const { return impl_->header_len; }
uint64_t SafetensorsFile::data_bytes() const { return impl_->data_len; }

// ---------------------------------------------------------------------------
// Writer

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape, const float* data) {
  uint64_t nbytes = 0;
  KVLAB_CHECK(checked_bytes(shape, 4, &nbytes), "safetensors writer: tensor '{}': invalid shape {}", name,
              shape_str(shape));
  add(name, DType::F32, std::move(shape), data, static_cast<std::size_t>(nbytes));
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            std::size_t nbytes) {
  KVLAB_CHECK(!name.empty(), "safetensors writer: empty tensor name");
  KVLAB_CHECK(name != "__metadata__", "safetensors writer: '__metadata__' is reserved, not a tensor name");
  for (const Entry& e : entries_)
    KVLAB_CHECK(e.name != name, "safetensors writer: tensor '{}' added twice", name);
  uint64_t want = 0;
  KVLAB_CHECK(checked_bytes(shape, dtype_size(dtype), &want),
              "safetensors writer: tensor '{}': shape {} has a negative or overflowing dimension", name,
              shape_str(shape));
  KVLAB_CHECK(want == nbytes, "safetensors writer: tensor '{}': shape {} of {} needs {} bytes, got {}", name,
              shape_str(shape), dtype_name(dtype), want, nbytes);
  KVLAB_CHECK(nbytes == 0 || data != nullptr, "safetensors writer: tensor '{}': null data", name);
  Entry e{name, dtype, std::move(shape), {}};
  e.data.resize(nbytes);
  if (nbytes) std::memcpy(e.data.data(), data, nbytes);
  entries_.push_back(std::move(e));
}

void SafetensorsWriter::set_metadata(const std::string& k, const std::string& v) { metadata_[k] = v; }

std::vector<std::byte> SafetensorsWriter::serialize() const {
  json header = json::object();
  uint64_t off = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", std::string(dtype_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {off, off + e.data.size()}}};
    off += e.data.size();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string h;
  try {
    h = header.dump();
  } catch (const json::exception& e) {
    throw Error(fmt::format("safetensors writer: a tensor name or metadata string is not valid UTF-8: {}",
                            e.what()));
  }
  while (h.size() % 8 != 0) h.push_back(' ');
  std::vector<std::byte> out(8 + h.size() + off);
  uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  std::byte* p = out.data() + 8 + h.size();
  for (const Entry& e : entries_) {
    if (!e.data.empty()) std::memcpy(p, e.data.data(), e.data.size());
    p += e.data.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  static std::atomic<unsigned> counter{0};
  const std::vector<std::byte> image = serialize();
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno)));
  const std::byte* p = image.data();
  std::size_t left = image.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("{}: write failed: {}", path, std::strerror(e)));
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  const int rc_sync = ::fsync(fd);
  const int e_sync = errno;
  const int rc_close = ::close(fd);
  if (rc_sync != 0 || rc_close != 0) {
    int e = rc_sync != 0 ? e_sync : errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot flush: {}", path, std::strerror(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename {} into place: {}", path, tmp, std::strerror(e)));
  }
}

}  // namespace kvlab::io
