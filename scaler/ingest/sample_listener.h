// Hook through which ingest hands every accepted (validated, stamped) sample to the
// rest of the scaler — the decision engine and the endpoint registry — as soon as it
// arrives, without waiting for Redis: decisions must not lag behind storage.
// Implementations are called from gRPC and HTTP threads concurrently and must not block.
#ifndef ZEROSCALE_SCALER_INGEST_SAMPLE_LISTENER_H_
#define ZEROSCALE_SCALER_INGEST_SAMPLE_LISTENER_H_

#include <vector>

#include "common/model/podmetric.h"

namespace zeroscale::ingest {

class SampleListener {
 public:
  virtual ~SampleListener() = default;
  // Takes the samples: the engine keeps them, so callers hand over their copy.
  virtual void OnSamples(std::vector<Podmetric> samples) = 0;
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_SAMPLE_LISTENER_H_
