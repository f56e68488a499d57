package main

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"loudly/pkg/faults"
	"loudly/services/drill"
)

// The drill group switches the faults of the drill catalogue (package drill) on and off
// through the fault bucket, the only control path the services listen to.
var drillCommands = []command{
	{name: "list", args: "[-json]", summary: "list the drills: fault, where it acts, the alerts it teaches", runE: drillList},
	{name: "start", args: "NAME [-intensity X] [-for D] [-service S]", summary: "start a drill's fault", runE: drillStart},
	{name: "stop", args: "[NAME]", summary: "stop one drill's fault, or all", runE: drillStop},
	{name: "status", args: "[-json]", summary: "show the active faults", runE: drillStatus},
	{name: "gameday", args: "-seed N -duration D [-each D] [-recover D] [-prometheus URL] [-json]", summary: "run drills at random for a while and score their detection", runE: drillGameday},
}

func runDrill(ctx context.Context, c *cli, self command, args []string) error {
	return c.runGroup(ctx, group{
		name: self.name,
		about: "On-call drills inject realistic faults into the running services, without restarts.\n" +
			"Each drill's guide is docs/drills/<name>.md.",
		commands: drillCommands,
	}, args)
}

// drillView is a drill as list and status print it.
type drillView struct {
	Name        string    `json:"name"`
	Service     string    `json:"service"`
	Generic     bool      `json:"generic"` // can be started in another service (-service)
	Intensity   float64   `json:"intensity"`
	Unit        string    `json:"unit"`
	Alerts      []string  `json:"alerts"`
	Guide       string    `json:"guide"`
	Description string    `json:"description"`
	Started     time.Time `json:"started,omitzero"`
	Until       time.Time `json:"until,omitzero"`
}

func drillList(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Lists every drill: its fault, the service it acts in, the default intensity and the\nalerts it should fire.")
	asJSON := l.fs.Bool("json", false, "print JSON")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	var views []drillView
	for _, s := range drill.Catalog {
		views = append(views, drillView{Name: s.Name, Service: s.Service, Generic: s.Generic, Intensity: s.Default, Unit: s.Unit,
			Alerts: s.Alerts, Guide: "docs/drills/" + s.Name + ".md", Description: s.Description})
	}
	if *asJSON {
		return c.writeJSON(views)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSERVICE\tDEFAULT\tALERTS\tWHAT HAPPENS")
	for _, v := range views {
		where := v.Service
		if v.Generic {
			where += " (or -service)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%g %s\t%s\t%s\n", v.Name, where, v.Intensity, v.Unit, strings.Join(v.Alerts, ","), v.Description)
	}
	return tw.Flush()
}

func drillStart(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Starts (or changes) a drill's fault. Services pick it up within a second.")
	intensity := l.fs.Float64("intensity", 0, "fraction of events, seconds of latency or events/s, by drill (default: the drill's)")
	dur := l.fs.Duration("for", 0, "end the fault by itself after `D` (e.g. 5m); 0: until stopped")
	svc := l.fs.String("service", "", "the `service` to drill, for a generic drill (any service that wires the drills' pieces); default: the drill's own")
	pos, err := l.parseArgs(args, 1, 1)
	if err != nil {
		return err
	}
	spec, known := drill.Lookup(pos[0])
	if !known {
		return l.usagef("unknown drill %q; 'loudly drill list' shows them", pos[0])
	}
	if *dur < 0 {
		return l.usagef("-for must be positive")
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	if *svc != "" && *svc != spec.Service && !spec.Generic {
		return l.usagef("drill %s acts only in %s; -service %s is for generic drills", spec.Name, spec.Service, *svc)
	}
	f, err := drill.Start(ctx, js, spec.Name, *svc, *intensity, *dur)
	if err != nil {
		return err
	}
	until := "until stopped"
	if !f.Until.IsZero() {
		until = "until " + f.Until.Format(time.RFC3339)
	}
	fmt.Fprintf(c.stdout, "started %s at %g %s in %s, %s\nexpected alerts: %s\nguide: docs/drills/%s.md\n",
		f.Name, f.Intensity, spec.Unit, f.Service, until, strings.Join(spec.Alerts, ", "), f.Name)
	return nil
}

func drillStop(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Stops a drill's fault, or every active fault when no name is given.")
	pos, err := l.parseArgs(args, 0, 1)
	if err != nil {
		return err
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	var names []string
	if len(pos) == 1 {
		if _, known := drill.Lookup(pos[0]); !known {
			return l.usagef("unknown drill %q", pos[0])
		}
		names = pos
	} else {
		active, err := faults.List(ctx, js)
		if err != nil {
			return err
		}
		for _, f := range active {
			names = append(names, f.Name)
		}
	}
	for _, n := range names {
		if err := faults.Stop(ctx, js, n); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "stopped %s\n", n)
	}
	if len(names) == 0 {
		fmt.Fprintln(c.stdout, "no active faults")
	}
	return nil
}

func drillStatus(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Shows the active faults and when each ends.")
	asJSON := l.fs.Bool("json", false, "print JSON")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	active, err := faults.List(ctx, js)
	if err != nil {
		return err
	}
	views := []drillView{}
	for _, f := range active {
		spec, _ := drill.Lookup(f.Name)
		views = append(views, drillView{Name: f.Name, Service: cmp.Or(f.Service, spec.Service), Generic: spec.Generic, Intensity: f.Intensity, Unit: spec.Unit,
			Alerts: spec.Alerts, Guide: "docs/drills/" + f.Name + ".md", Description: spec.Description, Started: f.Started, Until: f.Until})
	}
	if *asJSON {
		return c.writeJSON(views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.stdout, "no active faults")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tINTENSITY\tSTARTED\tENDS")
	for _, v := range views {
		ends := "when stopped"
		if !v.Until.IsZero() {
			ends = v.Until.Format(time.RFC3339) + " (in " + time.Until(v.Until).Round(time.Second).String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%g %s\t%s\t%s\n", v.Name, v.Intensity, v.Unit, v.Started.Format(time.RFC3339), ends)
	}
	return tw.Flush()
}
