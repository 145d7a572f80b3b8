// Data-parallel lvm.train: where the ranks come from, and the little protocol by which rank 0
// hands each training (settings + windows) to the others over the process group itself.
#include "stages/lvm/training_ranks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include "pipeline/error.hpp"
#include "stages/lvm/data_parallel.hpp"

namespace lvmflow {

namespace {

// Ranks started by a launcher wait for rank 0's pipeline to reach lvm.train (encoding may
// come first), so their collectives may wait long; in-process ranks start together.
constexpr std::chrono::seconds kLaunchedTimeout{48 * 3600};
constexpr std::chrono::seconds kInProcessTimeout{600};
constexpr std::chrono::seconds kReleaseTimeout{600};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < 0 || n > 1 << 20)
    throw Error(std::string("environment variable ") + name, std::string("'") + v + "' is not a non-negative integer",
                "unset it or set it to the rank/size the launcher assigned");
  return int(n);
}

// --- settings as text, so they travel as bytes ----------------------------------------

std::string encode_settings(const TrainSettings& s) {
  std::ostringstream o;
  o.precision(17);
  o << s.arch << ' ' << s.hidden << ' ' << s.layers << ' ' << s.epochs << ' ' << s.batch_size << ' ' << s.lr << ' '
    << s.weight_decay << ' ' << s.grad_clip << ' ' << s.patience << ' ' << s.factor << ' ' << s.loss << ' '
    << s.temperature << ' ' << s.seed;
  return o.str();
}

TrainSettings decode_settings(const std::string& text) {
  TrainSettings s;
  std::istringstream i(text);
  i >> s.arch >> s.hidden >> s.layers >> s.epochs >> s.batch_size >> s.lr >> s.weight_decay >> s.grad_clip >>
      s.patience >> s.factor >> s.loss >> s.temperature >> s.seed;
  if (!i) throw Error("data-parallel rank", "garbled training settings from rank 0", "run the same lvmflow build on every rank");
  return s;
}

// --- the job protocol: a header, then settings bytes, splits, target rows and the vectors ---
// Windows refer to rows of the vectors (window_data.hpp); the other ranks get the rows once,
// not a copy per window.

enum JobHeader { kCommand, kSettingsBytes, kRows, kContext, kDim, kVectorRows, kHeaderSize };
enum Command : std::int64_t { kDone = 0, kTrain = 1 };

void send_job(DataParallelGroup& group, const WindowData& data, const TrainSettings& s) {
  const std::string settings = encode_settings(s);
  auto header = torch::tensor({std::int64_t(kTrain), std::int64_t(settings.size()), std::int64_t(data.rows()),
                               std::int64_t(data.context), std::int64_t(data.dim), std::int64_t(data.vectors->rows())});
  group.broadcast(header);
  auto bytes = torch::from_blob(const_cast<char*>(settings.data()), {std::int64_t(settings.size())}, torch::kUInt8).clone();
  group.broadcast(bytes);
  auto splits = torch::from_blob(const_cast<std::int64_t*>(data.splits.data()), {std::int64_t(data.rows())}, torch::kInt64).clone();
  group.broadcast(splits);
  auto targets = torch::from_blob(const_cast<std::int64_t*>(data.target_rows.data()), {std::int64_t(data.rows())}, torch::kInt64).clone();
  group.broadcast(targets);
  auto values = torch::from_blob(const_cast<float*>(data.vectors->row(0)),
                                 {std::int64_t(data.vectors->rows() * data.vectors->dim())}).clone();
  group.broadcast(values);
}

void send_done(DataParallelGroup& group) {
  auto header = torch::zeros({kHeaderSize}, torch::kInt64);
  group.broadcast(header);
}

// Receives one job; false when rank 0 said it is done.
bool receive_job(DataParallelGroup& group, WindowData* data, TrainSettings* s) {
  auto header = torch::zeros({kHeaderSize}, torch::kInt64);
  group.broadcast(header);
  auto h = header.accessor<std::int64_t, 1>();
  if (h[kCommand] == kDone) return false;
  auto bytes = torch::empty({h[kSettingsBytes]}, torch::kUInt8);
  group.broadcast(bytes);
  *s = decode_settings(std::string(reinterpret_cast<const char*>(bytes.data_ptr<std::uint8_t>()), std::size_t(bytes.numel())));
  data->context = std::size_t(h[kContext]);
  data->dim = std::size_t(h[kDim]);
  const auto rows = std::size_t(h[kRows]);
  data->ids.assign(rows, std::string());   // rows() counts ids; training needs no names
  auto splits = torch::empty({std::int64_t(rows)}, torch::kInt64);
  group.broadcast(splits);
  data->splits.assign(splits.data_ptr<std::int64_t>(), splits.data_ptr<std::int64_t>() + rows);
  auto targets = torch::empty({std::int64_t(rows)}, torch::kInt64);
  group.broadcast(targets);
  data->target_rows.assign(targets.data_ptr<std::int64_t>(), targets.data_ptr<std::int64_t>() + rows);
  auto values = torch::empty({h[kVectorRows] * h[kDim]});
  group.broadcast(values);
  data->vectors = VectorRows::in_memory(std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel()),
                                        data->dim);
  return true;
}

// What ranks > 0 give train_model: their metrics and logs are rank 0's business.
class RankContext : public StageContext {
 public:
  explicit RankContext(std::ostream* log) : log_(log) {}
  const std::string& stage_name() const override { return name_; }
  const Params& params() const override { return params_; }
  std::filesystem::path artifact_dir() const override { return {}; }
  std::filesystem::path input_dir(std::size_t) const override { return {}; }
  std::size_t input_count() const override { return 0; }
  const std::string& input_name(std::size_t) const override { return name_; }
  void metric(const std::string&, double, std::int64_t, const std::string&) override {}
  void metric_text(const std::string&, const std::string&) override {}
  void log(const std::string& message) override {
    if (log_) *log_ << message << std::endl;
  }
  bool cancelled() const override { return false; }
  ItemCache& item_cache() override { throw Error("data-parallel rank", "no item cache on training ranks"); }
  void record_chunks(const Batch&) override {}

 private:
  std::string name_ = "lvm.train rank";
  Params params_;
  std::ostream* log_;
};

// Trains what rank 0 sends until it says done.
void serve_jobs(DataParallelGroup& group, std::ostream* log) {
  RankContext ctx(log);
  WindowData data;
  TrainSettings s;
  while (receive_job(group, &data, &s)) {
    if (log) *log << "rank " << group.rank() << "/" << group.world_size() << ": training " << s.arch << " on its share of "
                  << data.rows() << " windows" << std::endl;
    train_model(data, s, {}, ctx, &group);
  }
}

// Rank 0's group of a launched job: joined at its first training, kept for the next ones,
// closed after a failure (the other ranks then see the connection drop and exit).
struct LaunchedGroup {
  std::mutex mutex;
  std::unique_ptr<DataParallelGroup> group;
  bool failed = false;
};
LaunchedGroup& launched_group() {
  static LaunchedGroup g;
  return g;
}

TrainResult train_on_launched_ranks(const RankInfo& info, const WindowData& data, const TrainSettings& s,
                                    StageContext& ctx) {
  auto& launched = launched_group();
  std::lock_guard lock(launched.mutex);   // one training at a time uses the ranks
  if (launched.failed) throw Error("lvm.train", "the data-parallel ranks were lost after an earlier failure", "rerun the job");
  try {
    if (!launched.group) launched.group = DataParallelGroup::connect(info, kLaunchedTimeout);
    send_job(*launched.group, data, s);
    return train_model(data, s, {}, ctx, launched.group.get());
  } catch (...) {
    launched.group.reset();
    launched.failed = true;
    throw;
  }
}

TrainResult train_on_thread_ranks(int world_size, const WindowData& data, const TrainSettings& s, StageContext& ctx) {
  const RankInfo root{0, world_size, "127.0.0.1", free_local_port()};
  std::vector<std::thread> ranks;
  for (int r = 1; r < world_size; ++r)
    ranks.emplace_back([root, r] {
      RankInfo info = root;
      info.rank = r;
      // Failures surface on rank 0 (its collectives fail when a rank goes away).
      try {
        auto group = DataParallelGroup::connect(info, kInProcessTimeout);
        serve_jobs(*group, nullptr);
      } catch (const std::exception&) {
      }
    });
  auto join = [&] {
    for (auto& t : ranks) t.join();
  };
  std::unique_ptr<DataParallelGroup> group;
  try {
    group = DataParallelGroup::connect(root, kInProcessTimeout);
    send_job(*group, data, s);
    TrainResult result = train_model(data, s, {}, ctx, group.get());
    send_done(*group);
    group.reset();
    join();
    return result;
  } catch (...) {
    group.reset();   // closes the connections, so waiting ranks fail instead of hanging
    join();
    throw;
  }
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error("lvm.train world_size", "no free TCP port on 127.0.0.1 for the ranks' rendezvous");
  return ntohs(addr.sin_port);
}

std::optional<RankInfo> launched_rank() {
  RankInfo info;
  if (std::getenv("WORLD_SIZE")) {
    info.world_size = env_int("WORLD_SIZE", 1);
    info.rank = env_int("RANK", 0);
  } else {
    info.world_size = env_int("SLURM_STEP_NUM_TASKS", 1);
    info.rank = env_int("SLURM_PROCID", 0);
  }
  if (info.world_size <= 1) return std::nullopt;
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) info.master_addr = addr;
  info.master_port = env_int("MASTER_PORT", 29500);
  if (info.rank >= info.world_size)
    throw Error("environment", "rank " + std::to_string(info.rank) + " is not below the world size " +
                                   std::to_string(info.world_size),
                "check RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS");
  return info;
}

int serve_training_rank(const RankInfo& info, std::ostream& log) {
  try {
    auto group = DataParallelGroup::connect(info, kLaunchedTimeout);
    serve_jobs(*group, &log);
    return 0;
  } catch (const std::exception& e) {
    log << "error: data-parallel rank " << info.rank << ": " << e.what() << std::endl;
    return 1;
  }
}

void release_training_ranks(const RankInfo& info) noexcept {
  auto& launched = launched_group();
  std::lock_guard lock(launched.mutex);
  if (launched.failed) return;
  try {
    // The other ranks are waiting already (started together with this one), unless they died.
    if (!launched.group) launched.group = DataParallelGroup::connect(info, kReleaseTimeout);
    send_done(*launched.group);
  } catch (const std::exception&) {
    // They are gone or unreachable: nothing left to release.
  }
  launched.group.reset();
}

bool trains_data_parallel(int world_size) { return world_size > 1 || launched_rank().has_value(); }

TrainResult train_data_parallel(int world_size, const WindowData& data, const TrainSettings& s, StageContext& ctx) {
  const std::string where = "stage '" + ctx.stage_name() + "' (lvm.train, " + s.arch + ")";
  if (s.loss == "infonce")
    throw Error(where, "infonce takes its negatives from the whole batch, which data-parallel ranks do not see",
                "use loss mse or cosine with world_size > 1, or train in one process");
  if (auto launched = launched_rank()) {
    if (launched->rank != 0) throw Error(where, "only rank 0 runs the pipeline (internal error)");
    ctx.log(s.arch + ": data-parallel over " + std::to_string(launched->world_size) + " launched ranks (rendezvous " +
            launched->master_addr + ":" + std::to_string(launched->master_port) + ")");
    return train_on_launched_ranks(*launched, data, s, ctx);
  }
  ctx.log(s.arch + ": data-parallel over " + std::to_string(world_size) + " ranks in this process (Gloo on 127.0.0.1)");
  return train_on_thread_ranks(world_size, data, s, ctx);
}

}  // namespace lvmflow
