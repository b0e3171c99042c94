// Fuzz target for the safetensors reader (src/io/safetensors).
//
// Contract checked: any byte string either parses or throws kvlab::Error;
// nothing else escapes, nothing crashes or reads out of bounds (run under
// ASan/UBSan). For inputs that parse, every accessor is exercised and the
// file is re-serialised with SafetensorsWriter and parsed again: names,
// dtypes, shapes, bytes and metadata must survive the round trip.
//
// Built two ways (tests/fuzz.cmake): with g++ and the replay/mutation
// driver replay_main.cpp (a short run is part of ctest), and, when clang++
// is present, as a libFuzzer binary (target io_safetensors_libfuzzer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "common/error.h"
#include "io/safetensors.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "safetensors fuzz invariant violated: %s\n", what);
  std::abort();
}

void exercise(const kvlab::io::SafetensorsFile& f) {
  using kvlab::io::DType;
  kvlab::io::SafetensorsWriter w;
  volatile uint64_t sink = 0;
  for (const std::string& n : f.names()) {
    const auto& ti = f.info(n);
    auto b = f.bytes(n);
    if (b.size() != ti.nbytes()) fail("bytes().size() != nbytes()");
    for (std::byte x : b) sink = sink + static_cast<uint8_t>(x);
    switch (ti.dtype) {
      case DType::F32: case DType::F64: case DType::F16: case DType::BF16: case DType::F8_E4M3: case DType::E8M0: {
        auto v = f.to_f32(n);
        if (static_cast<int64_t>(v.size()) != ti.numel()) fail("to_f32 size != numel");
        break;
      }
      default:
        try {
          (void)f.to_f32(n);
          fail("to_f32 accepted an integer dtype");
        } catch (const kvlab::Error&) {
        }
    }
    w.add(n, ti.dtype, ti.shape, b.data(), b.size());
  }
  for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
  std::vector<std::byte> img;
  try {
    img = w.serialize();
  } catch (const kvlab::Error&) {
    return;  // names or metadata that are not valid UTF-8 cannot be re-written
  }
  auto g = kvlab::io::SafetensorsFile::parse(img, "roundtrip");
  if (g.names() != f.names()) fail("round trip changed the names");
  if (g.metadata() != f.metadata()) fail("round trip changed the metadata");
  for (const std::string& n : f.names()) {
    const auto& a = f.info(n);
    const auto& c = g.info(n);
    if (a.dtype != c.dtype || a.shape != c.shape) fail("round trip changed dtype or shape");
    auto x = f.bytes(n), y = g.bytes(n);
    if (x.size() != y.size() || (x.size() && std::memcmp(x.data(), y.data(), x.size()) != 0))
      fail("round trip changed the bytes");
  }
  (void)sink;
}

}  // namespace

// Inputs that parsed (read by replay_main.cpp's summary).
uint64_t kvlab_fuzz_accepted = 0;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  try {
    auto f = kvlab::io::SafetensorsFile::parse(in, "fuzz-input");
    ++kvlab_fuzz_accepted;
    exercise(f);
  } catch (const kvlab::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
