// Conversions between the wire types of proto/ and the domain types, used only at the
// edges (ingest, streams, gRPC services). Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_MODEL_PROTO_CONVERT_H_
#define ZEROSCALE_COMMON_MODEL_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "common/model/podmetric.h"
#include "common/model/scaling_rule.h"
#include "zeroscale/v1/podmetric.pb.h"
#include "zeroscale/v1/rules.pb.h"

namespace zeroscale {

void PodmetricToProto(const Podmetric& m, v1::Podmetric* out);
// Fails (naming the field) only on an unparsable sampledAt; receivedAt is ignored
// since the scaler stamps it.
absl::StatusOr<Podmetric> PodmetricFromProto(const v1::Podmetric& p);

void ScalingRuleToProto(const ScalingRule& rule, v1::ScalingRule* out);
// Unspecified enums are errors naming the field; zero window/step take the defaults.
absl::StatusOr<ScalingRule> ScalingRuleFromProto(const v1::ScalingRule& p);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_MODEL_PROTO_CONVERT_H_
