package northd

import "github.com/courier-sdn/courier/pipeline"

// tun_learn: learn messages (dataplane/bpf/learn.h). Paths, unknowns and
// probe replies are believed from the VPC's hubs only; a forget from a
// hub or from the host the path points to.
func tunLearnFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.TunLearn, 110, "learn && learn.op == 2 && (from.hub || from.path_host)", "forget_path;")
	b.add(pipeline.TunLearn, 110, "learn && learn.op == 4 && chassis.hub", "probe_reply;")
	b.add(pipeline.TunLearn, 100, "learn && !from.hub", "drop(learn_rejected);")
	b.add(pipeline.TunLearn, 90, "learn && learn.op == 1", "install_path;")
	b.add(pipeline.TunLearn, 90, "learn && learn.op == 3", "note_unknown;")
	b.add(pipeline.TunLearn, 90, "learn && learn.op == 5", "note_hub;")
	b.add(pipeline.TunLearn, 0, "1", "next;")
}
