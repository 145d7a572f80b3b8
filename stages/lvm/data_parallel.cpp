#include "stages/lvm/data_parallel.hpp"

// Debian's libtorch is built with Gloo; its headers hide the class behind this switch.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "pipeline/error.hpp"

namespace lvmflow {

struct DataParallelGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

namespace {

// Gloo needs an address the other ranks can reach: loopback for ranks on one machine,
// GLOO_SOCKET_IFNAME when the cluster says which interface, else this host's name.
std::shared_ptr<::gloo::transport::Device> gloo_device(const RankInfo& info) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (info.master_addr == "127.0.0.1" || info.master_addr == "localhost")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::unique_ptr<DataParallelGroup> DataParallelGroup::connect(const RankInfo& info, std::chrono::seconds timeout) {
  const std::string where = "data-parallel rank " + std::to_string(info.rank) + "/" + std::to_string(info.world_size) +
                            " (rendezvous " + info.master_addr + ":" + std::to_string(info.master_port) + ")";
  if (info.world_size < 1 || info.rank < 0 || info.rank >= info.world_size)
    throw Error(where, "rank must be in [0, world size)", "check RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS");
  auto impl = std::make_unique<Impl>();
  RankInfo joined = info;
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(info.master_port);
    store_options.isServer = info.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(info.world_size);
    store_options.waitWorkers = false;
    store_options.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, store_options);
    joined.master_port = impl->store->getPort();
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    options->devices.push_back(gloo_device(info));
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, info.rank, info.world_size, options);
  } catch (const std::exception& e) {
    // c10::Error messages carry a C++ backtrace; the first line says what happened.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw Error(where, "could not join the process group: " + what,
                "check that every rank uses the same MASTER_ADDR/MASTER_PORT and that the port is free and reachable");
  }
  return std::unique_ptr<DataParallelGroup>(new DataParallelGroup(joined, std::move(impl)));
}

DataParallelGroup::DataParallelGroup(RankInfo info, std::unique_ptr<Impl> impl)
    : info_(std::move(info)), impl_(std::move(impl)) {}

DataParallelGroup::~DataParallelGroup() = default;

std::pair<std::size_t, std::size_t> DataParallelGroup::share(std::size_t begin, std::size_t end) const {
  const std::size_t n = end - begin, ranks = std::size_t(info_.world_size), r = std::size_t(info_.rank);
  const std::size_t base = n / ranks, extra = n % ranks;
  const std::size_t first = begin + r * base + std::min(r, extra);
  return {first, first + base + (r < extra ? 1 : 0)};
}

void DataParallelGroup::sum(torch::Tensor& t) {
  std::vector<at::Tensor> tensors{t};
  impl_->group->allreduce(tensors)->wait();
}

void DataParallelGroup::broadcast(torch::Tensor& t, int root) {
  std::vector<at::Tensor> tensors{t};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  impl_->group->broadcast(tensors, options)->wait();
}

bool DataParallelGroup::sum_gradients(const std::vector<torch::Tensor>& params, bool stop) {
  // One flat buffer, one collective per step: [stop, has-gradient flag per parameter,
  // gradients...]. A parameter no rank has a gradient for stays without one, as in a single
  // process: AdamW skips such parameters entirely (no weight decay either).
  const auto count = static_cast<std::int64_t>(params.size());
  std::vector<torch::Tensor> parts = {torch::full({1}, stop ? 1.0f : 0.0f), torch::zeros({count})};
  for (std::int64_t i = 0; i < count; ++i) {
    const auto& p = params[std::size_t(i)];
    if (p.grad().defined()) parts[1][i] = 1.0f;
    parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}));
  }
  auto flat = torch::cat(parts);
  sum(flat);
  auto flags = flat.narrow(0, 1, count);
  std::int64_t offset = 1 + count;
  for (std::int64_t i = 0; i < count; ++i) {
    const auto& p = params[std::size_t(i)];
    const auto n = p.numel();
    if (flags[i].item<float>() > 0) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(flat.narrow(0, offset, n).view_as(p));
    } else {
      p.mutable_grad() = torch::Tensor();
    }
    offset += n;
  }
  return flat[0].item<float>() > 0;
}

}  // namespace lvmflow
