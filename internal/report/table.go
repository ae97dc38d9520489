package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RenderTable writes rep as an aligned text table for people: the month
// when the report covers several, the grouping column(s), then the counts and
// cost, a TOTAL line, and the report's notes (an empty month, unpriced
// models).
func RenderTable(w io.Writer, rep *Report) error {
	months := rep.Month == "" && rep.From != ""
	var head []string
	if months {
		head = append(head, "MONTH")
	}
	head = append(head, strings.ToUpper(rep.GroupBy))
	if rep.GroupBy == GroupByAccount {
		head = append(head, "NAME")
	}
	head = append(head, "REQUESTS", "ERRORS", "ESTIMATED", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "TOTAL TOKENS", "COUNTED", "COST USD")
	textCols := len(head) - 10
	cells := [][]string{head}
	for _, r := range rep.Rows {
		cells = append(cells, tableRow(months, rep.GroupBy, r))
	}
	total := tableRow(months, rep.GroupBy, rep.Totals)
	total[0] = "TOTAL"
	widths := make([]int, len(head))
	for _, row := range append(cells, total) {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	span := rep.Month
	if months {
		span = rep.From + " to " + rep.To
	}
	fmt.Fprintf(&b, "Usage for %s by %s\n\n", span, rep.GroupBy)
	line := func(row []string) {
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-len(c))
			if i < textCols {
				if i == len(row)-1 {
					pad = ""
				}
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteByte('\n')
	}
	for _, row := range cells {
		line(row)
	}
	sum := 2 * (len(widths) - 1)
	for _, n := range widths {
		sum += n
	}
	b.WriteString(strings.Repeat("-", sum) + "\n")
	line(total)
	if rep.Note != "" {
		fmt.Fprintf(&b, "\nNote: %s.\n", rep.Note)
	}
	if len(rep.UnpricedModels) > 0 {
		fmt.Fprintf(&b, "\nNo price configured (counted at 0 USD): %s\n", strings.Join(rep.UnpricedModels, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func tableRow(months bool, groupBy string, r ReportRow) []string {
	var row []string
	if months {
		row = append(row, r.Month)
	}
	switch groupBy {
	case GroupByTeam:
		row = append(row, r.Team)
	case GroupByAccount:
		row = append(row, r.Account, r.AccountName)
	case GroupByEntitlement:
		row = append(row, r.Entitlement)
	case GroupByTier:
		row = append(row, r.Tier)
	case GroupByPrincipal:
		row = append(row, r.Principal)
	default:
		row = append(row, r.Model)
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return append(row, i(r.Requests), i(r.Errors), i(r.EstimatedRequests), i(r.InputTokens), i(r.OutputTokens),
		i(r.CacheReadTokens), i(r.CacheWriteTokens), i(r.TotalTokens), i(r.CountedTokens), r.CostUSD.String())
}
