#include "scaler/report/leader_gauge.h"

#include <utility>

namespace zeroscale::report {

LeaderGauge::LeaderGauge(prometheus::Registry* registry, std::function<bool()> leading)
    : leading_(std::move(leading)),
      gauge_(prometheus::BuildGauge()
                 .Name("zeroscale_scaler_leader")
                 .Help("1 while this scaler replica decides (holds the Lease, or leads alone), "
                       "0 while it only ingests")
                 .Register(*registry)
                 .Add({})) {
  Refresh();
}

void LeaderGauge::Refresh() { gauge_.Set(leading_() ? 1 : 0); }

}  // namespace zeroscale::report
