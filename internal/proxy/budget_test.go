package proxy

// Allocation budgets of the whole request path, measured with
// TestHandlerAllocationBudget, with a little headroom. Lower them when the path
// gets leaner; raise them only with a reason in the commit.
const (
	allocBudgetConverse = 70
	allocBudgetStream   = 70
)
