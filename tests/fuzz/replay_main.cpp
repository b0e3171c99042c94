// Stand-alone driver for libFuzzer-style targets, for compilers without
// -fsanitize=fuzzer (g++): replays corpus files, then applies random
// structure-aware mutations (bit flips, byte edits, insert/delete/splice,
// header-length rewrites, numeric-token substitution inside the JSON) for a
// fixed wall-clock budget. A crash or sanitizer report fails the run; the
// failing input is written to ./fuzz-crash-<iteration>.bin first.
//
//   io_safetensors_fuzz [--seconds S] [--seed N] [--max-len N] FILE_OR_DIR...
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern uint64_t kvlab_fuzz_accepted;

namespace {

using Bytes = std::vector<uint8_t>;

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
};

const char* kTokens[] = {"0", "1", "-1", "18446744073709551615", "18446744073709551616", "9223372036854775807",
                         "4294967296", "1e3", "2.5", "null", "true", "\"F32\"", "\"F8_E8M0\"", "\"U8\"", "[]",
                         "{}", "[[[[[[[[", "\"__metadata__\"", "\"\\ud800\"", "\xff\xfe"};
const uint8_t kBytes[] = {0, 0xFF, '"', '[', ']', '{', '}', ',', ':', '-', '9', ' ', '\\', 0x80};

Bytes current_copy;  // the input being run (for the crash dump)
uint64_t current_iter = 0;

void dump_on_crash(int sig) {
  char name[64];
  std::snprintf(name, sizeof name, "fuzz-crash-%llu.bin", static_cast<unsigned long long>(current_iter));
  if (FILE* f = std::fopen(name, "wb")) {
    std::fwrite(current_copy.data(), 1, current_copy.size(), f);
    std::fclose(f);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void run(const Bytes& b) {
  current_copy = b;
  LLVMFuzzerTestOneInput(b.data(), b.size());
}

void mutate(Bytes& b, Rng& r, const std::vector<Bytes>& corpus, std::size_t max_len) {
  const int n = 1 + static_cast<int>(r.below(4));
  for (int k = 0; k < n; ++k) {
    switch (r.below(9)) {
      case 0:
        if (!b.empty()) b[r.below(b.size())] ^= static_cast<uint8_t>(1u << r.below(8));
        break;
      case 1:
        if (!b.empty()) b[r.below(b.size())] = kBytes[r.below(sizeof kBytes)];
        break;
      case 2:
        if (!b.empty()) {
          std::size_t at = r.below(b.size()), len = 1 + r.below(std::min<std::size_t>(16, b.size() - at));
          b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        }
        break;
      case 3: {
        std::size_t at = r.below(b.size() + 1), len = 1 + r.below(8);
        Bytes ins(len);
        for (auto& x : ins) x = static_cast<uint8_t>(r.next());
        b.insert(b.begin() + static_cast<long>(at), ins.begin(), ins.end());
        break;
      }
      case 4:
        if (!b.empty()) b.resize(r.below(b.size()));
        break;
      case 5:
        if (b.size() >= 8) {
          uint64_t v;
          switch (r.below(5)) {
            case 0: v = 0; break;
            case 1: v = b.size() - 8; break;
            case 2: v = b.size() - 8 + 1 + r.below(16); break;
            case 3: v = 1ull << (r.below(64)); break;
            default: v = r.next(); break;
          }
          std::memcpy(b.data(), &v, 8);
        }
        break;
      case 6: {  // replace a run of digits with an interesting token
        std::vector<std::size_t> digits;
        for (std::size_t i = 8; i < b.size(); ++i)
          if (b[i] >= '0' && b[i] <= '9' && (b[i - 1] < '0' || b[i - 1] > '9')) digits.push_back(i);
        if (digits.empty()) break;
        std::size_t at = digits[r.below(digits.size())], end = at;
        while (end < b.size() && b[end] >= '0' && b[end] <= '9') ++end;
        const char* t = kTokens[r.below(sizeof kTokens / sizeof kTokens[0])];
        b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(end));
        b.insert(b.begin() + static_cast<long>(at), t, t + std::strlen(t));
        // Keep the header length consistent half of the time so the JSON is reached.
        if (b.size() >= 8 && r.below(2)) {
          uint64_t h;
          std::memcpy(&h, b.data(), 8);
          h += std::strlen(t) - (end - at);
          std::memcpy(b.data(), &h, 8);
        }
        break;
      }
      case 7: {  // splice from another corpus entry
        const Bytes& o = corpus[r.below(corpus.size())];
        if (o.empty()) break;
        std::size_t from = r.below(o.size()), len = 1 + r.below(o.size() - from);
        std::size_t at = r.below(b.size() + 1);
        b.insert(b.begin() + static_cast<long>(at), o.begin() + static_cast<long>(from),
                 o.begin() + static_cast<long>(from + len));
        break;
      }
      default: {  // duplicate a range
        if (b.empty()) break;
        std::size_t from = r.below(b.size()), len = 1 + r.below(std::min<std::size_t>(32, b.size() - from));
        Bytes dup(b.begin() + static_cast<long>(from), b.begin() + static_cast<long>(from + len));
        b.insert(b.begin() + static_cast<long>(r.below(b.size() + 1)), dup.begin(), dup.end());
        break;
      }
    }
  }
  if (b.size() > max_len) b.resize(max_len);
}

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  uint64_t seed = 1;
  std::size_t max_len = 4096;
  std::vector<Bytes> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--max-len" && i + 1 < argc) {
      max_len = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a))
        if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
    } else if (std::filesystem::is_regular_file(a)) {
      corpus.push_back(read_file(a));
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--seed N] [--max-len N] FILE_OR_DIR...\n(no such file: %s)\n",
                   argv[0], a.c_str());
      return 2;
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no corpus inputs given\n");
    return 2;
  }
  std::signal(SIGSEGV, dump_on_crash);
  std::signal(SIGABRT, dump_on_crash);
  std::signal(SIGBUS, dump_on_crash);
  for (const Bytes& b : corpus) run(b);
  Rng r{seed};
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t iters = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    for (int k = 0; k < 64; ++k) {
      Bytes b = corpus[r.below(corpus.size())];
      mutate(b, r, corpus, max_len);
      current_iter = ++iters;
      run(b);
    }
  }
  std::printf("replayed %zu corpus inputs, ran %llu mutated inputs in %.1f s (%llu parsed, the rest refused): "
              "no crash\n",
              corpus.size(), static_cast<unsigned long long>(iters), seconds,
              static_cast<unsigned long long>(kvlab_fuzz_accepted));
  return 0;
}
