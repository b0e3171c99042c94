// The one codec-spec type, its one parser and the codec-family table
// (in the style of ggml's type_traits): every layer that names a codec —
// the registry (codec/), sweep specs (experiment/), imports and queries
// (store/), the statistics (stats/), the CLI — parses and prints specs here.
//
// A spec is a family and its parameters: "fp8_per64", "v4_native",
// "e8:q=38", "int:bits=8,block=64,scale=fp16", "hadamard_lloyd:bits=3".
// Each family has at most one RATE parameter (the integer that trades bits
// for error: Q of the lattices, bits of the scalar codecs) and any number
// of VARIANT parameters with an allowed set and a default (block, scale).
// Canonical form: lower case, every parameter written, in table order.
//
// Not here: constructing codecs (codec/codec.h), LibTorch, bit counts (a
// codec's bits are what it writes; codec::bits_fn prices a rate not run).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvlab {

struct CodecParamInfo {
  std::string name;                  // "block"
  std::vector<std::string> allowed;  // canonical values, e.g. {"fp16", "ue8m0"}
  std::string default_value;         // one of allowed
};

struct CodecFamilyInfo {
  std::string name;         // "e8"
  std::string rate_param;   // "q", "bits"; "" for fixed-rate formats
  int min_rate = 0, max_rate = 0;
  std::vector<CodecParamInfo> params;  // variant parameters, canonical order
  bool is_baseline = false;  // a storage format others are compared against
  std::string byte_format;   // one line: what encode() writes per vector
  std::string description;   // one line
};

// The table, in display order (baselines first).
const std::vector<CodecFamilyInfo>& codec_family_table();
// nullptr when unknown.
const CodecFamilyInfo* find_codec_family(const std::string& name);
// "fp8_per64, v4_native, d4:q=N (1 <= N <= 32767), ...": for messages.
std::string known_codecs_text();

// The entropy-coded variant "entropy=range" (codec/entropy_stream.h): an
// optional parameter of the families that have symbol columns, written
// after the variant parameters and only when given (canonical
// "e8:q=38,entropy=range"; "entropy=none" is the plain codec). It is part
// of variant() and with_rate(), so a rate sweep keeps it.
bool entropy_range_supported(const std::string& family);
// "d4, e8, int, hadamard_int, hadamard_lloyd": for messages.
std::string entropy_range_families_text();

struct CodecSpec {
  std::string family;
  std::optional<int> rate;                                 // the rate parameter's value
  std::vector<std::pair<std::string, std::string>> params;  // variant parameters, canonical order
  std::string canonical;                                   // "int:bits=8,block=64,scale=fp16"

  // The spec without its rate: "e8", "int:block=64,scale=fp16". Two specs
  // with the same variant differ only in rate (one rate-distortion curve).
  std::string variant() const;
  // The canonical spec of this variant at another rate.
  std::string with_rate(int rate) const;
  const CodecFamilyInfo& info() const;
  bool is_baseline() const { return info().is_baseline; }
  // A variant parameter's value ("" when the family has none of that name).
  std::string param(const std::string& name) const;
  // True for an entropy=range spec.
  bool entropy_range() const { return param("entropy") == "range"; }
  // Legacy accessor: the lattice Q (0 when the family has no rate).
  int q() const { return rate.value_or(0); }
};

// Accepts any case and spacing ("E8 : Q = 38"), parameters in any order,
// variant parameters omitted (defaults). A rate family without its rate
// takes default_rate when > 0, else it is an error. Throws kvlab::Error
// naming the value and listing what is allowed on an unknown family, an
// unknown or repeated parameter, a value outside its set or range, and an
// entropy value other than range / none or on a family without it.
CodecSpec parse_codec_spec(const std::string& spec, int default_rate = 0);

// A variant string ("e8", "int:block=64,scale=fp16", "int" = defaults) at
// a rate. Throws as parse_codec_spec.
CodecSpec codec_spec_at_rate(const std::string& variant, int rate);

}  // namespace kvlab
