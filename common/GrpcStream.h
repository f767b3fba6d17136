// ProducerStream: a server-streaming gRPC reactor (callback API) fed by a producer that
// runs on its own thread. The producer calls write(); write blocks while the previous
// message is in flight (so a slow client slows the producer instead of growing a
// queue) and returns false once the client is gone. The stream ends with the status
// the producer returns. A client that leaves stops the producer through its stop_token:
// no thread outlives its client.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

namespace dspy {

// Ends a unary callback call at once (bad arguments, or an answer that needs no work).
inline grpc::ServerUnaryReactor* finishNow(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  auto* r = ctx->DefaultReactor();
  r->Finish(status);
  return r;
}

template <class T>
class ProducerStream final : public grpc::ServerWriteReactor<T> {
 public:
  using Write = std::function<bool(const T&)>;
  using Producer = std::function<grpc::Status(const Write& write, std::stop_token stop)>;

  explicit ProducerStream(Producer producer) {
    thread_ = std::jthread([this, p = std::move(producer)](std::stop_token stop) {
      grpc::Status status = p([this, stop](const T& msg) { return write(msg, stop); }, stop);
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !writing_; });
        if (cancelled_) status = grpc::Status(grpc::StatusCode::CANCELLED, "client left");
      }
      this->Finish(status);
    });
  }

  // Rejects a call before anything is streamed.
  static ProducerStream* failed(grpc::Status status) {
    return new ProducerStream([status](const Write&, std::stop_token) { return status; });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
    cv_.notify_all();
  }

  void OnCancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      cv_.notify_all();
    }
    thread_.request_stop();
  }

  void OnDone() override {
    thread_.request_stop();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
    delete this;
  }

 private:
  bool write(const T& msg, std::stop_token stop) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [this] { return !writing_ || cancelled_; });
    if (cancelled_ || stop.stop_requested()) return false;
    writing_ = true;
    current_ = msg;
    this->StartWrite(&current_);
    return true;
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  bool writing_ = false;
  bool cancelled_ = false;
  T current_;
  std::jthread thread_;
};

}  // namespace dspy
