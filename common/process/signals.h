// Blocks SIGINT/SIGTERM in every thread and waits for one on the caller's thread, so
// main() can shut down in order. Call BlockTerminationSignals() before starting any
// thread. Not for use from several threads at once.
#ifndef ZEROSCALE_COMMON_PROCESS_SIGNALS_H_
#define ZEROSCALE_COMMON_PROCESS_SIGNALS_H_

#include "absl/time/time.h"

namespace zeroscale {

void BlockTerminationSignals();
// Returns the signal number received.
int WaitForTerminationSignal();
// As above, for at most `timeout`: the signal number, or 0 when none arrived (e.g. a
// second SIGTERM that cuts a graceful shutdown short).
int WaitForTerminationSignalFor(absl::Duration timeout);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_PROCESS_SIGNALS_H_
