// An op that can write sign bits (binary conv) -> ops that map bits to bits (max pool: the
// max of values is negative only if every value is, so its bit is the AND of theirs) -> an op
// that can read bits (binary conv), with nothing else reading the floats between: the first
// writes sign bits, the ones between work on bits, and the last skips its bit-pack. Exact by
// construction: the bits are what the last op would have computed from the floats.
#include "graph/rewrite.h"

namespace irnet {

void pass_sign_bits(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Op::SignBits producer = steps[i].op->sign_bits();
    if (!producer.write || producer.together) continue;
    std::vector<int> chain{int(i)};  // producer, bits-to-bits ops (pools), consumer
    int t = steps[i].out;
    for (;;) {
      const int j = graph.only_consumer(t);
      if (j < 0) break;
      const Step& next = steps[size_t(j)];
      if (next.in[0] != t) break;  // e.g. the residual operand of a binary conv
      chain.push_back(j);
      const Op::SignBits can = next.op->sign_bits();
      if (!(can.read && can.write && can.together)) break;  // the consumer, checked below
      t = next.out;
    }
    if (chain.size() < 2) continue;
    const Op::SignBits consumer = steps[size_t(chain.back())].op->sign_bits();
    if (!consumer.read || consumer.together) continue;
    check(steps[i].op->output_as_bits(), steps[i].op->desc().where(), ": cannot pass sign bits");
    for (size_t c = 1; c < chain.size(); ++c) {
      Op& op = *steps[size_t(chain[c])].op;
      check(op.input_as_bits() && (c + 1 == chain.size() || op.output_as_bits()), op.desc().where(),
            ": cannot pass sign bits");
    }
    for (size_t c = 0; c + 1 < chain.size(); ++c) {
      PlanTensor& bits = graph.tensors[size_t(steps[size_t(chain[c])].out)];
      bits.sign_bits = bits.internal = true;
    }
  }
}

}  // namespace irnet
