package console

// a11yMessages are the words that only assistive technology reads: the
// names of the page's landmarks.
var a11yMessages = map[string][2]string{
	"pages_nav": {"页面", "Pages"},
}

func init() { addMessages(a11yMessages) }
