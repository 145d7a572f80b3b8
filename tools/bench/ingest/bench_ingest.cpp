// Throughput of ingest.wikipedia + chunk.text on a generated multi-megabyte dump, side by side
// with the Python peer (ingest_peer.py: xml.etree iterparse + regex cleaning + naive chunking).
//
//   lvmflow_ingest_bench [--mb 64] [--source DUMP.xml] [--threads 2] [--keep DIR]
//
// The dump repeats the main-namespace pages of the source (default: data/sample-pages-articles.xml,
// else the test fixture) with fresh ids and titles and a per-copy sentence, as plain XML and as a
// multistream .bz2 (100 pages per stream, like Wikimedia's). Both stages run through the
// registry exactly as the engine builds them; chunk.text runs its batches on `--threads`
// threads, as the engine's map-stage concurrency would.
#include <bzlib.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "pipeline/error.hpp"
#include "pipeline/params.hpp"
#include "pipeline/stage.hpp"

namespace fs = std::filesystem;
using namespace lvmflow;

namespace {

class BenchContext : public StageContext {
 public:
  BenchContext(const std::string& type, const std::map<std::string, std::string>& raw) : name_(type) {
    const StageInfo* info = stage_registry().find(type);
    if (!info) throw Error("bench", "stage type '" + type + "' is not linked in");
    std::map<std::string, RawParam> params;
    for (const auto& [k, v] : raw) params[k] = RawParam{v, false, {}, "bench param " + k};
    params_ = check_params(*info, params, fs::current_path().string(), "bench");
    stage_ = info->make(params_);
  }
  Stage& stage() { return *stage_; }
  const std::string& stage_name() const override { return name_; }
  const Params& params() const override { return params_; }
  fs::path artifact_dir() const override { return fs::temp_directory_path(); }
  fs::path input_dir(std::size_t) const override { return {}; }
  std::size_t input_count() const override { return 0; }
  const std::string& input_name(std::size_t) const override { return name_; }
  void metric(const std::string& name, double value, std::int64_t, const std::string&) override {
    std::lock_guard lock(mutex_);
    metrics[name] = value;
  }
  void metric_text(const std::string&, const std::string&) override {}
  void log(const std::string&) override {}
  bool cancelled() const override { return false; }
  ItemCache& item_cache() override { throw Error("bench", "no item cache"); }
  void record_chunks(const Batch& b) override { recorded += b.rows(); }

  std::map<std::string, double> metrics;
  std::size_t recorded = 0;

 private:
  std::string name_;
  Params params_;
  std::unique_ptr<Stage> stage_;
  std::mutex mutex_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string(), "cannot read the source dump");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bzip2(const std::string& data) {
  std::string out(data.size() + data.size() / 100 + 600, '\0');
  unsigned len = static_cast<unsigned>(out.size());
  if (BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(data.data()),
                               static_cast<unsigned>(data.size()), 9, 0, 0) != BZ_OK)
    throw Error("bench", "bz2 compression failed");
  out.resize(len);
  return out;
}

std::string between(const std::string& s, const std::string& open, const std::string& close) {
  auto b = s.find(open);
  if (b == std::string::npos) return {};
  b += open.size();
  return s.substr(b, s.find(close, b) - b);
}

// Writes DIR/bench.xml and DIR/bench.xml.bz2 of at least `megabytes`; returns the page count.
std::size_t generate_dump(const fs::path& source, const fs::path& dir, double megabytes) {
  std::string xml = read_file(source);
  std::string header = xml.substr(0, xml.find("  <page>"));
  std::vector<std::string> pages;
  for (std::size_t at = xml.find("  <page>"); at != std::string::npos; at = xml.find("  <page>", at + 1)) {
    std::size_t end = xml.find("</page>", at) + 8;
    std::string page = xml.substr(at, end - at);
    if (between(page, "<ns>", "</ns>") == "0" && page.find("<redirect") == std::string::npos) pages.push_back(page);
  }
  if (pages.empty()) throw Error(source.string(), "no main-namespace pages to repeat");
  const std::size_t target = static_cast<std::size_t>(megabytes * 1024 * 1024);
  std::string out = header, stream, bz = bzip2(header);
  std::size_t id = 1, in_stream = 0;
  while (out.size() < target) {
    for (const auto& page : pages) {
      std::string copy = page;
      std::string title = between(copy, "<title>", "</title>");
      std::string old_id = "<id>" + between(copy, "<id>", "</id>") + "</id>";
      copy.replace(copy.find("<title>"), 7 + title.size(), "<title>" + title + " " + std::to_string(id));
      copy.replace(copy.find(old_id), old_id.size(), "<id>" + std::to_string(id) + "</id>");
      // A sentence of its own per copy, so no two articles are the same text.
      auto text_end = copy.find("</text>");
      copy.insert(text_end, "\nThis is copy " + std::to_string(id) + " of the article, written for the benchmark.\n");
      out += copy;
      stream += copy;
      ++id;
      if (++in_stream == 100) {
        bz += bzip2(stream);
        stream.clear();
        in_stream = 0;
      }
    }
  }
  out += "</mediawiki>\n";
  stream += "</mediawiki>\n";
  bz += bzip2(stream);
  std::ofstream(dir / "bench.xml", std::ios::binary) << out;
  std::ofstream(dir / "bench.xml.bz2", std::ios::binary) << bz;
  return id - 1;
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

struct Result {
  double ingest_s = 0, chunk_s = 0, total_s = 0, cpu_s = 0;
  std::size_t articles = 0, sections = 0, chunks = 0;
};

// Ingest on this thread; chunk batches on `threads` workers as they arrive, then in order.
Result run_lvmflow(const fs::path& dump, unsigned threads) {
  using clock = std::chrono::steady_clock;
  Result r;
  BenchContext ingest("ingest.wikipedia", {{"path", dump.string()}});
  BenchContext chunker("chunk.text", {});
  auto& source = dynamic_cast<SourceStage&>(ingest.stage());
  auto& map = dynamic_cast<MapStage&>(chunker.stage());
  map.start(chunker);
  std::vector<Batch> inputs;
  std::mutex mutex;
  std::condition_variable ready;
  bool done = false;
  std::size_t next_job = 0;
  std::vector<Batch> outputs;
  std::atomic<long> chunk_ns{0};
  auto worker = [&] {
    while (true) {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return next_job < inputs.size() || done; });
      if (next_job >= inputs.size()) return;
      std::size_t job = next_job++;
      Batch in = inputs[job];
      lock.unlock();
      auto t0 = clock::now();
      Batch out = map.process(chunker, in);
      chunk_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count();
      lock.lock();
      outputs[job] = std::move(out);
    }
  };
  auto start = clock::now();
  double cpu_start = process_cpu_seconds();
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back(worker);
  Batch b;
  double ingest_s = 0;
  while (true) {
    auto t0 = clock::now();
    bool more = source.next(ingest, b, 64);
    ingest_s += std::chrono::duration<double>(clock::now() - t0).count();
    if (!more) break;
    std::lock_guard lock(mutex);
    r.sections += b.rows();
    inputs.push_back(std::move(b));
    outputs.emplace_back();
    b = Batch{};
    ready.notify_one();
  }
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  ready.notify_all();
  for (auto& t : pool) t.join();
  for (const auto& out : outputs) map.consume_ordered(chunker, out);
  map.finish(chunker);
  r.total_s = std::chrono::duration<double>(clock::now() - start).count();
  r.cpu_s = process_cpu_seconds() - cpu_start;
  r.ingest_s = ingest_s;
  r.chunk_s = static_cast<double>(chunk_ns.load()) / 1e9;
  r.articles = static_cast<std::size_t>(ingest.metrics["articles_read"]);
  r.chunks = chunker.recorded;
  return r;
}

std::string run_python(const std::string& python, const fs::path& script, const fs::path& dump) {
  std::string cmd = python + " '" + script.string() + "' '" + dump.string() + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw Error("bench", "cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (pclose(pipe) != 0) throw Error("bench", "python peer failed: " + cmd);
  return out;
}

double json_number(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  return at == std::string::npos ? 0 : std::stod(json.substr(at + key.size() + 3));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    double megabytes = 64;
    unsigned threads = 2;
    fs::path source = fs::path(LVMFLOW_SOURCE_DIR) / "data/sample-pages-articles.xml";
    if (!fs::exists(source)) source = fs::path(LVMFLOW_SOURCE_DIR) / "tests/stages/ingest/fixtures/sample-pages-articles.xml";
    fs::path keep;
    std::string python = "/usr/bin/python3";
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&] {
        if (i + 1 >= argc) throw Error("bench", a + " needs a value");
        return std::string(argv[++i]);
      };
      if (a == "--mb") megabytes = std::stod(value());
      else if (a == "--source") source = value();
      else if (a == "--threads") threads = static_cast<unsigned>(std::stoul(value()));
      else if (a == "--keep") keep = value();
      else if (a == "--python") python = value();
      else throw Error("bench", "unknown option " + a, "options: --mb N --source DUMP --threads N --keep DIR --python PATH");
    }
    fs::path dir = keep.empty() ? fs::temp_directory_path() / ("lvmflow-bench-ingest-" + std::to_string(::getpid())) : keep;
    fs::create_directories(dir);
    std::size_t pages = generate_dump(source, dir, megabytes);
    double xml_mb = static_cast<double>(fs::file_size(dir / "bench.xml")) / (1024 * 1024);
    double bz_mb = static_cast<double>(fs::file_size(dir / "bench.xml.bz2")) / (1024 * 1024);
    std::printf("dump: %zu pages from %s\n      bench.xml %.1f MB, bench.xml.bz2 %.1f MB (multistream)\n",
                pages, source.filename().c_str(), xml_mb, bz_mb);
    fs::path peer = fs::path(LVMFLOW_SOURCE_DIR) / "tools/bench/ingest/ingest_peer.py";

    double load[1] = {0};
    getloadavg(load, 1);
    std::printf("machine: %u hardware threads, load average %.1f at start\n", std::thread::hardware_concurrency(), load[0]);
    std::printf("\n%-34s %8s %9s %9s %8s %8s %9s %9s %11s\n", "run", "input", "articles", "chunks", "wall s",
                "cpu s", "MB/s xml", "chunks/s", "MB/cpu-s");
    for (const char* name : {"bench.xml", "bench.xml.bz2"}) {
      Result r = run_lvmflow(dir / name, threads);
      const char* input = std::string(name).ends_with("bz2") ? "xml.bz2" : "xml";
      std::printf("%-34s %8s %9zu %9zu %8.2f %8.2f %9.1f %9.0f %11.1f\n",
                  ("lvmflow ingest+chunk (" + std::to_string(threads) + " chunk thr)").c_str(), input,
                  r.articles, r.chunks, r.total_s, r.cpu_s, xml_mb / r.total_s,
                  static_cast<double>(r.chunks) / r.total_s, xml_mb / r.cpu_s);
      std::printf("%-34s %8s %9s %9s %8.2f %8s %9.1f\n", "  of which ingest (read+parse+clean)", "", "", "",
                  r.ingest_s, "", xml_mb / r.ingest_s);
      std::printf("%-34s %8s %9s %9s %8.2f %8s %9s %9.0f\n", "  chunk: busy s summed over threads", "", "", "",
                  r.chunk_s, "", "", static_cast<double>(r.chunks) / r.chunk_s);
      std::string py = run_python(python, peer, dir / name);
      double s = json_number(py, "seconds"), cpu = json_number(py, "cpu_seconds");
      std::printf("%-34s %8s %9.0f %9.0f %8.2f %8.2f %9.1f %9.0f %11.1f\n", "python peer (iterparse+regex)", input,
                  json_number(py, "articles"), json_number(py, "chunks"), s, cpu, xml_mb / s,
                  json_number(py, "chunks") / s, xml_mb / cpu);
    }
    if (keep.empty()) fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lvmflow_ingest_bench: %s\n", e.what());
    return 1;
  }
}
