// The program links libtorch, FAISS, sentencepiece and TBB together; this proves they load and
// run in one process (the protobuf symbol clash between sentencepiece and libtorch crashed
// at start-up before the link-order fix in CMakeLists.txt).
#include <faiss/IndexFlat.h>
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <atomic>
#include <fstream>

TEST(Link, TorchFaissSentencepieceTbbRunTogether) {
  auto a = torch::ones({4, 4});
  EXPECT_FLOAT_EQ((a.matmul(a)).sum().item<float>(), 64.f);

  faiss::IndexFlatIP index(4);
  std::vector<float> v = {1, 0, 0, 0, 0, 1, 0, 0};
  index.add(2, v.data());
  float d;
  faiss::idx_t i;
  index.search(1, v.data() + 4, 1, &d, &i);
  EXPECT_EQ(i, 1);

  sentencepiece::SentencePieceProcessor sp;
  EXPECT_FALSE(sp.Load("/nonexistent/spiece.model").ok());

  std::atomic<int> sum{0};
  tbb::parallel_for(0, 100, [&](int k) { sum += k; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(Link, TorchUsesOptimizedBlas) {
  // Debian's libtorch calls libblas.so.3; tools/setup.sh points it at OpenBLAS. A 512x512
  // matmul takes ~1 ms there and ~100 ms with the reference BLAS.
  std::ifstream maps("/proc/self/maps");
  auto x = torch::randn({256, 256});
  (void)x.matmul(x);
  std::string line, all;
  while (std::getline(maps, line)) all += line + "\n";
  EXPECT_NE(all.find("openblas"), std::string::npos) << "libblas.so.3 is not OpenBLAS; run tools/setup.sh";
}
