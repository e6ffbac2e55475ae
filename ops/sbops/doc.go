// Package sbops is the southbound's tables as the daemons write them:
// one file per table, each with the verbs that name what a write means
// (claim a binding, acknowledge a configuration, accept a learned
// address), in the manner of ovn-kubernetes' libovsdb ops. A verb
// returns operations; the caller composes them into one transaction and
// commits it (ops.Transact, or a lock session). Verbs are built on the
// generic ops.Table over the generated models, so a value is written as
// the schema types its column, never by a hand-made ovsdb.Row.
//
// What a verb guards (a binding updated only while its chassis is still
// what the caller read) is part of its meaning and is said in its name
// or its comment. What to write and when stays with the daemons.
package sbops

import (
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// The southbound's tables as ops plans them. The schema and the models
// are generated together and never change at run time, so the plans are
// made once, like a compiled regular expression, and only read.
var (
	sbSchema        = sbdb.Schema()
	chassisPrivateT = ops.MustTable[sbdb.ChassisPrivate](sbSchema, sbdb.ChassisPrivateTable)
	datapathT       = ops.MustTable[sbdb.Datapath](sbSchema, sbdb.DatapathTable)
	extnetT         = ops.MustTable[sbdb.ExternalNetwork](sbSchema, sbdb.ExternalNetworkTable)
	hubT            = ops.MustTable[sbdb.Hub](sbSchema, sbdb.HubTable)
	learnedT        = ops.MustTable[sbdb.LearnedBinding](sbSchema, sbdb.LearnedBindingTable)
	logicalFlowT    = ops.MustTable[sbdb.LogicalFlow](sbSchema, sbdb.LogicalFlowTable)
	portBindingT    = ops.MustTable[sbdb.PortBinding](sbSchema, sbdb.PortBindingTable)
	sbGlobalT       = ops.MustTable[sbdb.SBGlobal](sbSchema, sbdb.SBGlobalTable)
	snatT           = ops.MustTable[sbdb.SNAT](sbSchema, sbdb.SNATTable)
	snatBlockT      = ops.MustTable[sbdb.SNATBlock](sbSchema, sbdb.SNATBlockTable)
	snatHandoffT    = ops.MustTable[sbdb.SNATHandoff](sbSchema, sbdb.SNATHandoffTable)
)
