// Reads ahead on a thread of its own: decompression and XML parsing overlap with the wikitext
// cleaning that the stage does on the caller's thread. Order is kept (one reader thread), and
// memory stays bounded (a cap on queued articles and on their bytes).
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "stages/ingest/article_reader.hpp"

namespace lvmflow::ingest {
namespace {

class PrefetchingReader : public ArticleReader {
 public:
  PrefetchingReader(std::unique_ptr<ArticleReader> inner, std::size_t max_articles, std::size_t max_bytes)
      : inner_(std::move(inner)), max_articles_(std::max<std::size_t>(1, max_articles)), max_bytes_(max_bytes) {
    thread_ = std::thread([this] { read_ahead(); });
  }

  ~PrefetchingReader() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    thread_.join();
  }

  bool next(RawArticle& out) override {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !queue_.empty() || finished_; });
    if (queue_.empty()) {
      // Everything read before a failure has been handed out; now the failure itself.
      if (error_) std::rethrow_exception(error_);
      return false;
    }
    out = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= out.text.size();
    lock.unlock();
    space_.notify_one();
    return true;
  }

 private:
  void read_ahead() {
    try {
      while (true) {
        RawArticle article;
        bool more = inner_->next(article);
        std::unique_lock lock(mutex_);
        if (!more || stop_) break;
        // Wait for room; one article is always accepted, however large.
        space_.wait(lock, [&] {
          return stop_ || queue_.empty() || (queue_.size() < max_articles_ && queued_bytes_ < max_bytes_);
        });
        if (stop_) break;
        queued_bytes_ += article.text.size();
        queue_.push_back(std::move(article));
        lock.unlock();
        ready_.notify_one();
      }
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    ready_.notify_all();
  }

  std::unique_ptr<ArticleReader> inner_;
  const std::size_t max_articles_, max_bytes_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<RawArticle> queue_;
  std::size_t queued_bytes_ = 0;
  bool finished_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<ArticleReader> make_prefetching_reader(std::unique_ptr<ArticleReader> inner,
                                                       std::size_t max_articles, std::size_t max_bytes) {
  return std::make_unique<PrefetchingReader>(std::move(inner), max_articles, max_bytes);
}

}  // namespace lvmflow::ingest
