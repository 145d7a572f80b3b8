// The program links libtorch, FAISS and TBB and reaches sentencepiece through its shim; this
// proves they all load and work in one process. (Linked naively, sentencepiece's bundled
// protobuf and libtorch's libprotobuf clash: a crash at start-up, or a protobuf version
// abort when a model loads. See stages/common/sentencepiece_tokenizer.hpp.)
#include <faiss/IndexFlat.h>
#include <gtest/gtest.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <atomic>
#include <fstream>

#include "pipeline/error.hpp"
#include "stages/common/sentencepiece_tokenizer.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

TEST(Link, TorchFaissSentencepieceTbbRunTogether) {
  auto a = torch::ones({4, 4});
  EXPECT_FLOAT_EQ((a.matmul(a)).sum().item<float>(), 64.f);

  faiss::IndexFlatIP index(4);
  std::vector<float> v = {1, 0, 0, 0, 0, 1, 0, 0};
  index.add(2, v.data());
  float d;
  faiss::Index::idx_t i;
  index.search(1, v.data() + 4, 1, &d, &i);
  EXPECT_EQ(i, 1);

  // A real model, trained here by python3-sentencepiece, loads and round-trips text.
  auto dir = make_temp_dir("lvmflow-spm");
  auto [rc, out] = shell("/usr/bin/python3 -c \"import sentencepiece as s; open('" + (dir / "c.txt").string() +
                         "','w').write('\\n'.join('the fox %d jumps over the lazy dog again' % i for i in range(300))); "
                         "s.SentencePieceTrainer.train(input='" + (dir / "c.txt").string() + "', model_prefix='" +
                         (dir / "m").string() + "', vocab_size=40, minloglevel=2)\"");
  ASSERT_EQ(rc, 0) << out;
  SentencePieceTokenizer sp(dir / "m.model");
  EXPECT_EQ(sp.piece_size(), 40);
  auto ids = sp.encode("the lazy fox");
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(sp.decode(ids), "the lazy fox");
  EXPECT_THROW(SentencePieceTokenizer(dir / "c.txt"), Error);
  EXPECT_THROW(SentencePieceTokenizer(dir / "missing.model"), Error);
  std::filesystem::remove_all(dir);

  std::atomic<int> sum{0};
  tbb::parallel_for(0, 100, [&](int k) { sum += k; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(Link, TorchUsesOptimizedBlas) {
  // Debian's libtorch calls libblas.so.3; tools/setup.sh points it at OpenBLAS (the reference
  // BLAS made a GRU forward ~30x slower here).
  auto x = torch::randn({256, 256});
  (void)x.matmul(x);
  std::ifstream maps("/proc/self/maps");
  std::string line, all;
  while (std::getline(maps, line)) all += line + "\n";
  EXPECT_NE(all.find("openblas"), std::string::npos) << "libblas.so.3 is not OpenBLAS; run tools/setup.sh";
}

}  // namespace
}  // namespace lvmflow::testing
