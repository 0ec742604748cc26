// SPDX-License-Identifier: Apache-2.0
#include "core/handoff.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/registry.hpp"
#include "core/secure_socket.hpp"

namespace ssx::core::handoff {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "ownership words are shared between processes: their atomics must be lock-free");

// Slab is one MAP_SHARED mapping of ownership words, made at one fork for the connections that
// had none. Words are never reused: the mapping goes away when the last Claim in this process
// that points into it does (and the kernel frees it when no process maps it any more).
class Slab {
 public:
  Slab(void *base, std::size_t bytes) : base_(base), bytes_(bytes) {}
  ~Slab() { ::munmap(base_, bytes_); }
  Slab(const Slab &) = delete;
  Slab &operator=(const Slab &) = delete;
  std::atomic<std::uint64_t> *word(std::size_t i) const {
    return static_cast<std::atomic<std::uint64_t> *>(base_) + i;
  }

 private:
  void *base_;
  std::size_t bytes_;
};

namespace {

// At most this many forks are remembered (one pipe each) while connections used before them are
// open. Past it a fork is not remembered, and those connections stay undecided (closed without
// close_notify) until used again: never a wrong close_notify, at worst a missing one.
constexpr std::size_t kMaxForkRecords = 256;

std::uint64_t make_word(pid_t pid, std::uint32_t epoch) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(pid)) << 32) | epoch;
}
pid_t word_pid(std::uint64_t w) {
  return static_cast<pid_t>(static_cast<std::uint32_t>(w >> 32));
}
std::uint32_t word_epoch(std::uint64_t w) {
  return static_cast<std::uint32_t>(w);
}

struct ProcessState {
  std::atomic<pid_t> pid{0};
  std::atomic<std::uint32_t> epoch{0};  // forks this process (and its ancestors) made
  pid_t parent = 0;                     // the process that forked this one; 0 before any fork
  std::uint32_t birth = 0;              // epoch at that fork

  std::mutex fork_mu;  // held from prepare to parent/child: one fork at a time
  std::vector<std::shared_ptr<SecureSocket>> held;  // sockets locked across the fork
  int pipe_read = -1;
  int pipe_write = -1;
  int life = -1;  // write end of the pipe our parent watches (close-on-exec)

  std::mutex children_mu;                 // the two below
  std::map<std::uint32_t, int> children;  // fork epoch -> read end; hangs up when the child is gone
  std::uint32_t unremembered = 0;         // the latest fork without a pipe (0: none)
};

ProcessState &state() {
  static ProcessState *s = new ProcessState;  // never destroyed: handlers may run at exit
  return *s;
}

// children_gone_since says whether every child forked after |epoch| has exited or called exec.
bool children_gone_since(std::uint32_t epoch) {
  ProcessState &st = state();
  std::lock_guard lock(st.children_mu);
  if (st.unremembered > epoch) return false;
  for (auto it = st.children.upper_bound(epoch); it != st.children.end();) {
    pollfd p{it->second, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & (POLLHUP | POLLERR)) == 0) return false;
    ::close(it->second);
    it = st.children.erase(it);
  }
  return true;
}

Failure lost_failure(int fd, pid_t owner) {
  std::string who = owner > 0 ? "process " + std::to_string(owner) : std::string("another process");
  return fail(EPERM, SSX_REASON_OWNED_BY_OTHER_PROCESS,
              "the connection on fd " + std::to_string(fd) + " is used by " + who +
                  " since a fork(): this process must not use it (call ssx_release(" +
                  std::to_string(fd) + ") and close(" + std::to_string(fd) + "); docs/handoff.md)");
}

}  // namespace

// ForkHandlers are the pthread_atfork handlers; a class so that they may set up Claims.
class ForkHandlers {
 public:
  static void prepare();
  static void parent();
  static void child();
};

void ForkHandlers::prepare() {
  ProcessState &st = state();
  st.fork_mu.lock();
  st.held = lock_registry_for_fork();
  for (auto &s : st.held) s->lock_for_fork();

  const pid_t me = st.pid.load();
  const std::uint32_t epoch = st.epoch.load();
  // Nothing below allocates but the slab's control block (caught): a handler must not throw.
  std::size_t need = 0;
  bool tracked = false;
  std::uint32_t oldest = epoch;  // the earliest epoch a connection of ours was last used at
  for (auto &s : st.held) {
    if (!s->has_connection_locked()) continue;
    Claim &c = s->claim_locked();
    if (c.lost_) continue;
    tracked = true;
    if (c.slot_ == nullptr) {
      ++need;
      continue;
    }
    const std::uint64_t w = c.slot_->load();
    if (word_pid(w) == me && word_epoch(w) < oldest) oldest = word_epoch(w);
  }
  {
    // Forks at or before |oldest| can no longer matter to a connection of this process.
    std::lock_guard lock(st.children_mu);
    while (!st.children.empty() && (!tracked || st.children.begin()->first <= oldest)) {
      ::close(st.children.begin()->second);
      st.children.erase(st.children.begin());
    }
    if (!tracked || st.unremembered <= oldest) st.unremembered = 0;
  }
  if (need > 0) {
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::size_t unit = page > 0 ? static_cast<std::size_t>(page) : 4096;
    const std::size_t bytes = (need * sizeof(std::uint64_t) + unit - 1) / unit * unit;
    void *base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    std::shared_ptr<Slab> slab;
    if (base != MAP_FAILED) {
      try {
        slab = std::make_shared<Slab>(base, bytes);
      } catch (...) {
        ::munmap(base, bytes);
      }
    }
    std::size_t i = 0;
    for (auto &s : st.held) {
      if (!s->has_connection_locked()) continue;
      Claim &c = s->claim_locked();
      if (c.lost_ || c.slot_ != nullptr) continue;
      if (slab) {
        c.slab_ = slab;
        c.slot_ = slab->word(i++);
        c.slot_->store(make_word(me, epoch));
      } else {
        c.untracked_ = true;  // the parent gives it up: fail closed
      }
    }
  }
  st.pipe_read = st.pipe_write = -1;
  if (tracked) {
    std::lock_guard lock(st.children_mu);
    int ends[2];
    if (st.children.size() < kMaxForkRecords && ::pipe2(ends, O_CLOEXEC) == 0) {
      st.pipe_read = ends[0];
      st.pipe_write = ends[1];
    } else {
      st.unremembered = epoch + 1;
    }
  }
  st.epoch.store(epoch + 1);
}

void ForkHandlers::parent() {
  ProcessState &st = state();
  const std::uint32_t epoch = st.epoch.load();
  if (st.pipe_write >= 0) ::close(st.pipe_write);
  if (st.pipe_read >= 0) {
    std::lock_guard lock(st.children_mu);
    try {
      st.children[epoch] = st.pipe_read;
    } catch (...) {  // out of memory: forget this fork, conservatively
      ::close(st.pipe_read);
      st.unremembered = epoch;
    }
  }
  st.pipe_read = st.pipe_write = -1;
  for (auto &s : st.held) {
    Claim &c = s->claim_locked();
    if (c.untracked_) c.lost_ = true;  // no shared word: the child has it, this process not
    s->unlock_after_fork();
  }
  st.held.clear();
  unlock_registry_after_fork();
  st.fork_mu.unlock();
}

void ForkHandlers::child() {
  ProcessState &st = state();
  st.parent = st.pid.load();
  st.pid.store(::getpid());
  st.birth = st.epoch.load();
  {
    std::lock_guard lock(st.children_mu);
    for (auto &[epoch, fd] : st.children) ::close(fd);  // our parent's children, not ours
    st.children.clear();
    st.unremembered = 0;
  }
  if (st.pipe_read >= 0) ::close(st.pipe_read);
  if (st.life >= 0) ::close(st.life);  // our parent's life line belongs to our parent's watcher
  st.life = st.pipe_write;             // ours: closed by exec or exit
  st.pipe_read = st.pipe_write = -1;
  for (auto &s : st.held) {
    Claim &c = s->claim_locked();
    c.untracked_ = false;  // without a word the child has the connection (the parent gave it up)
    s->unlock_after_fork();
  }
  st.held.clear();
  unlock_registry_after_fork();
  st.fork_mu.unlock();
}

void ensure_fork_handlers() {
  static const bool installed = [] {
    state().pid.store(::getpid());
    return ::pthread_atfork(&ForkHandlers::prepare, &ForkHandlers::parent, &ForkHandlers::child) ==
           0;
  }();
  (void)installed;  // without handlers (ENOMEM at start-up) forks are not tracked
}

Claim::Claim() {
  ensure_fork_handlers();
  creator_ = state().pid.load();
}

Claim::~Claim() = default;

Result<void> Claim::use(int fd) {
  if (lost_) return lost_failure(fd, 0);
  if (slot_ == nullptr)
    return {};  // no fork since the connection was made (or the child of one
                // whose parent could not share a word and gave it up)
  ProcessState &st = state();
  const pid_t me = st.pid.load();
  const std::uint64_t mine = make_word(me, st.epoch.load());
  std::uint64_t w = slot_->load();
  for (;;) {
    if (w == mine) return {};
    const pid_t owner = word_pid(w);
    const bool may_claim =
        owner == me || (owner == st.parent && st.parent != 0 && word_epoch(w) < st.birth);
    if (!may_claim) {
      lost_ = true;
      return lost_failure(fd, owner);
    }
    if (slot_->compare_exchange_weak(w, mine)) return {};
  }
}

Standing Claim::standing(bool settle) {
  if (lost_) return Standing::lost;
  if (slot_ == nullptr) return Standing::own;
  ProcessState &st = state();
  const pid_t me = st.pid.load();
  const std::uint64_t mine = make_word(me, st.epoch.load());
  std::uint64_t w = slot_->load();
  for (;;) {
    if (w == mine) return Standing::own;
    const pid_t owner = word_pid(w);
    if (owner == st.parent && st.parent != 0 && word_epoch(w) < st.birth) {
      return Standing::undecided;
    }
    if (owner != me) return Standing::lost;
    if (!settle || !children_gone_since(word_epoch(w))) return Standing::undecided;
    if (slot_->compare_exchange_weak(w, mine)) return Standing::own;
  }
}

}  // namespace ssx::core::handoff
