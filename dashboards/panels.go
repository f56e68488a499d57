package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The panel kinds both dashboards use, with the options set once: every field Grafana
// would otherwise fill in with its own default is set here, so the JSON says what the
// reader sees.

// graph is a time series panel of Prometheus queries, half the dashboard wide.
func graph(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(promDS).Targets(targets(qs...)).
		Unit(unit).Min(0).
		DrawStyle(common.GraphDrawStyleLine).LineWidth(1).FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).SpanNulls(common.BoolOrFloat64{Bool: ptr(false)}).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
		Height(8).Span(12)
}

// single is a stat panel: one number, colored by thresholds, with its recent trend.
func single(title, description, unit string, q *prometheus.DataqueryBuilder, th *dashboard.ThresholdsConfigBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(promDS).Targets(targets(q)).
		Unit(unit).Thresholds(th).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		GraphMode(common.BigValueGraphModeArea).ColorMode(common.BigValueColorModeBackground).
		TextMode(common.BigValueTextModeValue).JustifyMode(common.BigValueJustifyModeAuto).
		Orientation(common.VizOrientationAuto).WideLayout(true).ShowPercentChange(false).
		Height(8).Span(6)
}

// distribution is a heatmap of a Prometheus histogram's buckets, exemplars on top.
func distribution(title, description string, q *prometheus.DataqueryBuilder) *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(promDS).Targets(targets(q.Format(prometheus.PromQueryFormatHeatmap).Exemplar(true))).
		Calculate(false).
		RowsFrame(heatmap.NewRowsHeatmapOptionsBuilder().Layout(common.HeatmapCellLayoutLe).Value("orders/s")).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit("s").AxisPlacement(common.AxisPlacementLeft)).
		Color(heatmap.NewHeatmapColorOptionsBuilder().Mode(heatmap.HeatmapColorModeScheme).
			Scheme("Spectral").Fill("dark-orange").Scale(heatmap.HeatmapColorScaleExponential).
			Exponent(0.5).Steps(64).Reverse(false)).
		CellValues(heatmap.NewCellValuesBuilder().Unit("ops")).
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true).ShowColorScale(true)).
		ShowLegend().ExemplarsColor("rgba(255,0,255,0.7)").
		Height(8).Span(12)
}

// logLines is a logs panel of one LogQL query, newest first.
func logLines(title, description, logQL string) *logs.PanelBuilder {
	return logs.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(lokiDS).
		WithTarget(loki.NewDataqueryBuilder().Datasource(lokiDS).Expr(logQL).RefId("A").
			QueryType("range").EditorMode(loki.QueryEditorModeCode).MaxLines(500)).
		ShowTime(true).ShowLabels(true).ShowCommonLabels(false).WrapLogMessage(true).
		PrettifyLogMessage(false).EnableLogDetails(true).ShowLogContextToggle(true).
		SortOrder(common.LogsSortOrderDescending).DedupStrategy(common.LogsDedupStrategyNone).
		Height(12).Span(24)
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title).Collapsed(false) }

func ptr[T any](v T) *T { return &v }
