// Blocks SIGINT/SIGTERM in every thread and waits for one on the caller's thread, so
// main() can shut down in order. Call BlockTerminationSignals() before starting any
// thread. Not for use from several threads at once.
#ifndef ZEROSCALE_COMMON_PROCESS_SIGNALS_H_
#define ZEROSCALE_COMMON_PROCESS_SIGNALS_H_

namespace zeroscale {

void BlockTerminationSignals();
// Returns the signal number received.
int WaitForTerminationSignal();

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_PROCESS_SIGNALS_H_
