// Sign bits between binary convolutions, exact by construction: the bits are what the reading
// conv's own bit-pack would have made from the floats.
//  1. An op that can write sign bits (binary conv) -> ops that map bits to bits (max pool: the
//     max of values is negative only if every value is, so its bit is the AND of theirs) -> an
//     op that can read bits (binary conv), with nothing else reading the floats between: the
//     first writes sign bits, the ones between work on bits, and the last skips its bit-pack.
//  2. A binary conv's output that other ops also read as floats (ResNet: the next conv's input
//     and its residual, or a float downsample's input): the conv writes the floats and their
//     sign bits, and the binary convs that take it as their input read the bits.
//  3. A map of bits that only binary convs read, all with the same padding, gets that padding
//     as a zero border written by its producer: the readers then take their taps from it in
//     place, with no pass (and, on several threads, no barrier) of their own before the GEMM.
#include "graph/rewrite.h"

namespace irnet {

namespace {

// Whether an op reads its first input as bits into a conv's GEMM, i.e. not a bits-to-bits op.
bool reads_bits(const Op& op) {
  const Op::SignBits can = op.sign_bits();
  return can.read && !can.together;
}

void pass_chains(StepGraph& graph) {
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
    if (chain.size() < 2 || !reads_bits(*steps[size_t(chain.back())].op)) continue;
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

void pass_floats_and_bits(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Op::SignBits producer = steps[i].op->sign_bits();
    const int t = steps[i].out;
    if (!producer.write || producer.together || graph.tensors[size_t(t)].sign_bits) continue;
    std::vector<size_t> readers;
    for (size_t j = i + 1; j < steps.size(); ++j)
      if (!steps[j].in.empty() && steps[j].in[0] == t && reads_bits(*steps[j].op)) readers.push_back(j);
    if (readers.empty() || !steps[i].op->output_floats_and_bits()) continue;
    PlanTensor bits{graph.tensors[size_t(t)].name + " (sign bits)", graph.tensors[size_t(t)].shape};
    bits.sign_bits = bits.internal = true;
    steps[i].out_bits = int(graph.tensors.size());
    graph.tensors.push_back(bits);
    for (size_t j : readers) {
      check(steps[j].op->input_as_bits(), steps[j].op->desc().where(), ": cannot read sign bits");
      steps[j].in[0] = steps[i].out_bits;
    }
  }
}

void pass_borders(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  for (Step& writer : steps) {
    const int t = writer.out_bits >= 0 ? writer.out_bits : writer.out;
    if (!graph.tensors[size_t(t)].sign_bits) continue;
    std::vector<Op*> readers;
    bool agree = true;
    Op::BitsBorder border;
    for (Step& s : steps)
      for (size_t k = 0; k < s.in.size(); ++k) {
        if (s.in[k] != t) continue;
        const Op::BitsBorder wanted = s.op->input_bits_border();
        agree = agree && k == 0 && (readers.empty() || wanted == border);
        border = wanted;
        readers.push_back(s.op.get());
      }
    if (!agree || readers.empty() || border == Op::BitsBorder{} || !writer.op->output_bits_border(border))
      continue;
    graph.tensors[size_t(t)].border = border;
    for (Op* op : readers) check(op->input_bits_bordered(), op->desc().where(), ": cannot read a bordered map");
  }
}

}  // namespace

void pass_sign_bits(StepGraph& graph) {
  pass_chains(graph);
  pass_floats_and_bits(graph);
  pass_borders(graph);
}

}  // namespace irnet
