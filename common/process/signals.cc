#include "common/process/signals.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>

namespace zeroscale {
namespace {

sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int WaitForTerminationSignal() {
  sigset_t set = TerminationSet();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int WaitForTerminationSignalFor(absl::Duration timeout) {
  sigset_t set = TerminationSet();
  const timespec ts = absl::ToTimespec(std::max(timeout, absl::ZeroDuration()));
  for (;;) {
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    // EINTR: another signal's handler ran (none of ours); EAGAIN: the time is up. A retry
    // after EINTR may wait a little longer than asked, which callers tolerate.
    if (errno != EINTR) return 0;
  }
}

}  // namespace zeroscale
