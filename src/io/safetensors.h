// safetensors reader and writer (https://huggingface.co/docs/safetensors).
//
// Format: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
// (an object: tensor name -> {dtype, shape, data_offsets}, plus an optional
// "__metadata__" string->string map), then the data buffer. Offsets are
// [begin, end) relative to the start of the buffer; tensors are C-order,
// little-endian.
//
// The reader memory-maps the file and validates the header strictly before
// any tensor is handed out: header length beyond the file, malformed JSON,
// unknown dtypes or keys, negative or overflowing shapes, shape/byte-count
// mismatch, out-of-range, overlapping or gapped data offsets, non-string
// metadata all throw kvlab::Error naming the file and the tensor. A
// malformed file never crashes the process (fuzzed: tests/fuzz/).
//
// What it is not: no LibTorch (model/ and host/ wrap tensors), no lazy
// JSON, no big-endian hosts. Dtype conversions come from kernels/fp_formats.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvlab::io {

// E8M0 is stored in files either as dtype "F8_E8M0" or as "U8" scale
// tensors; this enum reads "F8_E8M0" as E8M0 and "U8" as U8 (callers that
// know a U8 tensor holds E8M0 scales interpret it themselves).
enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, E8M0, I64, I32, I16, I8, U8, BOOL };

// Bytes per element (1, 2, 4 or 8).
std::size_t dtype_size(DType t);
// The safetensors spelling ("F32", "BF16", "F8_E4M3", "F8_E8M0", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype string; throws kvlab::Error listing the known ones.
DType dtype_from_name(std::string_view s);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // byte offsets in the data buffer, [begin, end)

  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// Formats a shape as "[2, 3]" for messages.
std::string shape_str(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`. Throws kvlab::Error naming the path.
  static SafetensorsFile open(const std::string& path);
  // Validates an in-memory image (copied); `label` stands in for the path in
  // messages. Used by the fuzz target and tests.
  static SafetensorsFile parse(std::span<const std::byte> image, const std::string& label);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  bool has(const std::string& name) const;
  // Tensor names, sorted.
  std::vector<std::string> names() const;
  // Throws kvlab::Error naming the file and the missing tensor.
  const TensorInfo& info(const std::string& name) const;
  // Raw little-endian bytes of one tensor (no alignment guarantee).
  std::span<const std::byte> bytes(const std::string& name) const;
  // Converts F32 / F64 / F16 / BF16 / F8_E4M3 / F8_E8M0 to float, C order.
  // Throws for integer and other dtypes (naming the tensor and dtype).
  std::vector<float> to_f32(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const;
  const std::string& path() const;
  // Size of the header JSON and of the data buffer, in bytes.
  uint64_t header_bytes() const;
  uint64_t data_bytes() const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class SafetensorsWriter {
 public:
  // Adds a float32 tensor (copied). Names are unique, non-empty, and not
  // "__metadata__"; shape dims >= 0.
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data);
  // Adds raw little-endian bytes of `dtype`; nbytes must equal
  // numel(shape) * dtype_size(dtype). Throws kvlab::Error otherwise.
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
           std::size_t nbytes);
  void set_metadata(const std::string& k, const std::string& v);
  // Writes atomically: a temporary file beside `path`, then rename.
  void write(const std::string& path) const;
  // The complete file image (what write() puts on disk).
  std::vector<std::byte> serialize() const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace kvlab::io
