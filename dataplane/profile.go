package dataplane

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/courier-sdn/courier/pipeline"
)

// The slots of a profiled copy's stage_prof after the stages' own, as
// bpf/profile.h numbers them (PROF_FINISH, PROF_WHOLE, PROF_CLOCK).
var (
	profFinish = len(pipeline.Stages)
	profWhole  = profFinish + 1
	profClock  = profFinish + 2
	profSlots  = profFinish + 3
)

// StepTime is what a profiled copy of the programs (ProfiledObject,
// bpf/profile.h) measured of one step of the pipeline: how often it ran
// and its mean time per run, the clock's own cost taken off.
type StepTime struct {
	// Step is a stage's name, or "finish": carrying out the verdict
	// (encapsulation, redirection, counting).
	Step   string  `json:"step"`
	Runs   uint64  `json:"runs"`
	MeanNS float64 `json:"mean_ns"`
}

// Profile is what a profiled copy measured since the last read.
type Profile struct {
	// Steps that ran, in the pipeline's order as ReadProfile reads
	// them.
	Steps []StepTime `json:"steps"`
	// Programs is how many times the programs ran; WholeNS their mean
	// time, the clock's cost taken off once.
	Programs uint64  `json:"programs"`
	WholeNS  float64 `json:"whole_ns"`
	// ClockNS is the cost of one timing (a start and an end with
	// nothing between), already taken off each step's mean.
	ClockNS float64 `json:"clock_ns"`
}

// PerPacket is step's time per run of the programs (a step may run
// more or less than once a packet); 0 if it did not run.
func (p Profile) PerPacket(step string) (float64, bool) {
	for _, s := range p.Steps {
		if s.Step == step {
			return s.MeanNS * float64(s.Runs) / float64(max(p.Programs, 1)), true
		}
	}
	return 0, false
}

// ReadProfile reads a profiled copy's times since the last read, and
// clears them.
func ReadProfile(coll *ebpf.Collection) (Profile, error) {
	m := coll.Maps["stage_prof"]
	if m == nil {
		return Profile{}, fmt.Errorf("these programs have no stage profile (stage_prof): not ProfiledObject's")
	}
	if int(m.MaxEntries()) != profSlots {
		return Profile{}, fmt.Errorf("stage_prof has %d slots, want %d: another build's programs", m.MaxEntries(), profSlots)
	}
	sums := make([]dvrprofProfSlot, profSlots)
	zero := make([]dvrprofProfSlot, ebpf.MustPossibleCPU())
	for i := range sums {
		var per []dvrprofProfSlot
		if err := m.Lookup(uint32(i), &per); err != nil {
			return Profile{}, fmt.Errorf("stage_prof[%d]: %w", i, err)
		}
		for _, p := range per {
			sums[i].Ns += p.Ns
			sums[i].Runs += p.Runs
		}
		if err := m.Put(uint32(i), zero); err != nil {
			return Profile{}, fmt.Errorf("clear stage_prof[%d]: %w", i, err)
		}
	}
	mean := func(s dvrprofProfSlot) float64 { return float64(s.Ns) / float64(max(s.Runs, 1)) }
	p := Profile{Programs: sums[profWhole].Runs, ClockNS: mean(sums[profClock])}
	if p.Programs > 0 {
		p.WholeNS = mean(sums[profWhole]) - p.ClockNS
	}
	names := map[int]string{profFinish: "finish"}
	for _, st := range pipeline.Stages {
		names[st.ID] = st.Name
	}
	for i, s := range sums[:profFinish+1] {
		if s.Runs > 0 {
			p.Steps = append(p.Steps, StepTime{Step: names[i], Runs: s.Runs, MeanNS: mean(s) - p.ClockNS})
		}
	}
	return p, nil
}

// MeanProfile is the mean of profiles of the same path (copies of the
// programs loaded apart, whose code lands apart: spine's copies), each
// weighed by its runs; a profile of no runs counts for nothing. Steps
// are in the order first seen.
func MeanProfile(ps []Profile) Profile {
	out := Profile{}
	idx := map[string]int{}
	for _, p := range ps {
		if p.Programs == 0 {
			continue
		}
		out.Programs += p.Programs
		out.WholeNS += p.WholeNS * float64(p.Programs)
		out.ClockNS += p.ClockNS * float64(p.Programs)
		for _, s := range p.Steps {
			i, ok := idx[s.Step]
			if !ok {
				i = len(out.Steps)
				idx[s.Step] = i
				out.Steps = append(out.Steps, StepTime{Step: s.Step})
			}
			out.Steps[i].Runs += s.Runs
			out.Steps[i].MeanNS += s.MeanNS * float64(s.Runs)
		}
	}
	if out.Programs > 0 {
		out.WholeNS /= float64(out.Programs)
		out.ClockNS /= float64(out.Programs)
	}
	for i := range out.Steps {
		out.Steps[i].MeanNS /= float64(max(out.Steps[i].Runs, 1))
	}
	return out
}
