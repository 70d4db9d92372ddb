package classify

import (
	"math/rand/v2"
	"strings"
)

// Groups of generated training documents.
const (
	GroupHardNegatives = "generated/hard-negatives"
	GroupSpliced       = "generated/spliced"
)

// hardNegTemplates are benign texts that use the words attacks use
// ("ignore", "instructions", "system prompt", "password", "<script>") in
// harmless ways. {X} is filled from the matching filler list. All of it is
// SentinelDF's own text.
var hardNegTemplates = []string{
	"How do I ignore a {warning} in {lang}?",
	"How can I tell {tool} to ignore {files}?",
	"Is it safe to ignore the {warning} that {tool} prints on startup?",
	"// ignore errors from close: the file was opened read-only",
	"# ignore the header row, then parse the remaining {files}",
	"Please disregard my previous email; the meeting moved to {time}.",
	"Ignore the last slide of the deck, the numbers were updated after the review.",
	"The instructions above the sink say to wash your hands for twenty seconds.",
	"Follow the assembly instructions in the box: attach the {part} before the {part2}.",
	"Can you explain what a system prompt is and why chatbots use one?",
	"What is prompt injection, and how do developers defend against it?",
	"Write a short essay on the history of jailbreaking iPhones.",
	"My {device} says 'password incorrect' even though I reset my password yesterday. What should I check?",
	"To reset your password, open Settings, choose Account and select 'Forgot password'.",
	"We will never ask for your password by email. If you received such a message, report it.",
	"The admin panel is only available to users with the administrator role.",
	"You are now subscribed to our newsletter. You can unsubscribe at any time.",
	"Act as a tour guide and describe three sights in {city}.",
	"Pretend you are a {role} and explain {topic} to a ten-year-old.",
	"From now on, the office closes at {time} on Fridays.",
	"Forget about the old schedule: the new timetable starts on {day}.",
	"The previous instructions for the {part} were wrong; the corrected manual is attached.",
	"Override the default {setting} in the config file if your network needs it.",
	"How do I kill a {proc} process that hangs on {os}?",
	"What's the best way to shoot {subject} at night?",
	"Where can I buy a {part} for my {device}?",
	"The system will be down for maintenance on {day} from {time}.",
	"Bypass the roundabout by taking the second exit towards {city}.",
	"Summarise the following text in three sentences.",
	"Translate the following sentence into {language}: the weather is nice today.",
	"Respond only in {language} for the rest of the lesson, please.",
	"Developer mode on {device} lets you enable USB debugging; how do I turn it on?",
	"The <script> tag loads JavaScript; put it before </body> so the page renders first.",
	"In HTML, <img src=\"logo.png\" alt=\"Company logo\"> shows an image with a description.",
	"<p>Welcome to our store! Browse the <a href=\"/catalog\">catalog</a> for new arrivals.</p>",
	"<div class=\"note\">Remember to save your work before closing the editor.</div>",
	"if err != nil { return fmt.Errorf(\"open config: %w\", err) }",
	"SELECT name, email FROM users WHERE created_at > '2023-01-01' ORDER BY name;",
	"def ignore_case(s):\n    return s.lower()",
	"The character in the novel ignores every warning and sails into the storm.",
	"Don't reveal the ending of the movie to anyone who hasn't seen it!",
	"Reveal the answer to the riddle only after everyone has guessed.",
	"What does 'execute' mean in the context of a legal will?",
	"How do I print the contents of a file in {lang}?",
	"Output the result as a JSON object with the fields name and age.",
	"The new rules of the game: each player draws two cards instead of one.",
	"Security tip: never paste commands you don't understand into a terminal.",
	"As an AI researcher, I study how language models follow instructions.",
	"The DAN protocol in networking refers to a data access node.",
	"Hypothetically, if the train leaves at {time} and travels 80 km/h, when does it arrive?",
}

var hardNegFillers = map[string][]string{
	"{warning}":  {"deprecation warning", "lint warning", "SSL warning", "type-check warning", "compiler warning"},
	"{lang}":     {"Python", "Go", "JavaScript", "Rust", "Java", "C#", "bash"},
	"{tool}":     {"git", "eslint", "Docker", "pytest", "the linter", "rsync"},
	"{files}":    {"log files", "the build folder", "node_modules", "temporary files", "CSV rows"},
	"{time}":     {"3pm", "10:30", "noon", "9 am", "half past four"},
	"{part}":     {"left panel", "shelf bracket", "drawer rail", "back cover", "hinge"},
	"{part2}":    {"top board", "door", "legs", "handle", "frame"},
	"{device}":   {"laptop", "phone", "router", "tablet", "smart TV"},
	"{city}":     {"Lisbon", "Kyoto", "Nairobi", "Montreal", "Prague"},
	"{role}":     {"pirate", "astronaut", "chef", "museum guide", "detective"},
	"{topic}":    {"photosynthesis", "gravity", "compound interest", "volcanoes", "the water cycle"},
	"{day}":      {"Monday", "the first of March", "next Tuesday", "Saturday"},
	"{setting}":  {"proxy", "timeout", "port", "log level", "cache size"},
	"{proc}":     {"Python", "Java", "zombie", "background", "node"},
	"{os}":       {"Linux", "macOS", "Windows"},
	"{subject}":  {"the moon", "city lights", "fireworks", "a concert", "stars"},
	"{language}": {"French", "Spanish", "German", "Japanese", "Portuguese"},
}

// HardNegatives generates n benign texts that mention attack vocabulary
// harmlessly, deterministically from seed.
func HardNegatives(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x4e6))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		t := hardNegTemplates[i%len(hardNegTemplates)]
		for {
			a := strings.Index(t, "{")
			if a < 0 {
				break
			}
			b := strings.Index(t[a:], "}")
			if b < 0 {
				break
			}
			key := t[a : a+b+1]
			fill, ok := hardNegFillers[key]
			if !ok {
				break
			}
			t = t[:a] + fill[rng.IntN(len(fill))] + t[a+b+1:]
		}
		out = append(out, t)
	}
	return out
}

// Splice embeds each attack text inside a host text at a random sentence
// boundary, deterministically from seed, returning one document per attack
// (hosts are reused round-robin in a shuffled order).
func Splice(attacks, hosts []string, seed uint64) []string {
	if len(hosts) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x5b1))
	order := rng.Perm(len(hosts))
	out := make([]string, 0, len(attacks))
	for i, a := range attacks {
		h := hosts[order[i%len(order)]]
		// Cut positions: after ". " or a newline, or the ends.
		cuts := []int{0, len(h)}
		for j := 0; j+1 < len(h); j++ {
			if (h[j] == '.' && h[j+1] == ' ') || h[j] == '\n' {
				cuts = append(cuts, j+1)
			}
		}
		c := cuts[rng.IntN(len(cuts))]
		out = append(out, h[:c]+" "+a+" "+h[c:])
	}
	return out
}
