package sample

// Handler serves the routes of docs/nothing.md (see STYLE.md).
func Handler() {}
