package detect

import (
	"strings"
	"testing"
)

// Fake credentials, assembled at run time so that secret scanners do not
// flag this file. None of them is or was a real credential.
var (
	fakeGitHub    = "gh" + "p_" + "R4nd0mT0k3nV4lu3W1thM1x3dC4s3s9876543"
	fakeStripe    = "sk" + "_live_" + "51HxYzQ7wP2mRk9Tn4Lv8Bz3Jq"
	fakeAWSID     = "AKIA" + "Q3EGRT6KLP2MWN7X"
	fakeAWSSecret = "kQ9dP2xW7rT4vN8mB3cF6hJ1sL5gZ0yA/EuIoR+x"
	fakeOpenAI    = "sk-" + "proj-" + "Xb7Kq2Lm9Np4Rs6Tv8Wx1Yz3Ab5Cd7Ef9Gh2Ij4Kl6Mn"
	fakeAnthropic = "sk-" + "ant-api03-" + "Q7w9E2r4T6y8U1i3O5p7A9s2D4f6G8h1J3k5L7z9X2c4V6b8N1m3"
	fakeGoogle    = "AI" + "za" + "SyB7x9Qk2Lm4Np6Rs8Tv1Wx3Yz5Ab7Cd9Ef"
	fakeGitLab    = "gl" + "pat-" + "Xy7Zq2Wv9Ut4Rs6Pq8No"
	fakeSlack     = "xo" + "xb-" + "263594206564-2343594206574-Qm7Rt2Vx9Kp4Ln8Wz3Hs6Jd1F"
	fakeKeyBody   = strings.Repeat("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmwIDAQAB\n", 4)
)

func TestSecretsRules(t *testing.T) {
	cases := []detectorCase{
		// cloud and SaaS credentials
		{"aws key id", "aws_access_key_id = " + fakeAWSID, "secrets.aws_access_key", 0.8, 0},
		{"aws example id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "secrets.aws_access_key", 0.05, 0.2},
		{"aws secret near id", "id=" + fakeAWSID + "\nsecret=" + fakeAWSSecret, "secrets.aws_secret_key", 0.8, 0},
		{"aws example secret", "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secrets.aws_secret_key", 0.05, 0.2},
		{"aws in word", "XAKIA" + "Q3EGRT6KLP2MWN7X is not a key", "", 0, 0},
		{"github token", "export GITHUB_TOKEN=" + fakeGitHub, "secrets.github_token", 0.8, 0},
		{"github placeholder", "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "secrets.github_token", 0.05, 0.2},
		{"github short", "the ghp_ prefix marks classic tokens", "", 0, 0},
		{"gitlab token", "PRIVATE-TOKEN: " + fakeGitLab, "secrets.gitlab_token", 0.8, 0},
		{"slack token", "SLACK_BOT_TOKEN=" + fakeSlack, "secrets.slack_token", 0.8, 0},
		{"slack webhook", "curl https://hooks.slack.com/services/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j", "secrets.slack_webhook", 0.7, 0},
		{"stripe live", "stripe.api_key = '" + fakeStripe + "'", "secrets.stripe_key", 0.8, 0},
		{"stripe test", "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'", "secrets.stripe_key", 0.05, 0.2},
		{"google key", "key=" + fakeGoogle + "&callback=init", "secrets.google_api_key", 0.7, 0},
		{"openai key", "OPENAI_API_KEY=" + fakeOpenAI, "secrets.openai_key", 0.8, 0},
		{"openai prose", "the sk-learn library and task-based sk-models", "", 0, 0},
		{"anthropic key", "ANTHROPIC_API_KEY=" + fakeAnthropic, "secrets.anthropic_key", 0.8, 0},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\n" + fakeKeyBody + "-----END RSA PRIVATE KEY-----", "secrets.private_key", 0.9, 0},
		{"private key placeholder", "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----", "secrets.private_key", 0.05, 0.3},
		{"public key", "-----BEGIN PUBLIC KEY-----\n" + fakeKeyBody + "-----END PUBLIC KEY-----", "", 0, 0},
		{"jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiIsInJvbGUiOiJhZG1pbiJ9.dGhpc2lzYXNpZ25hdHVyZXRoYXRpc2xvbmc", "secrets.jwt", 0.5, 0.7},
		{"jwt.io example", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "secrets.jwt", 0.05, 0.2},
		{"not jwt", "eyJub3QiOiJqd3QifQ.e30.sig is a JSON blob without alg", "", 0, 0},
		// generic assignments
		{"password assignment", `db_password = "q7#Lm2!xP9vR"`, "secrets.generic_assignment", 0.4, 0.5},
		{"api key yaml", "api_key: 9f8Kq2LmX7pR4tW1zY6v", "secrets.generic_assignment", 0.4, 0.5},
		{"password from env", `password = os.getenv("DB_PASSWORD")`, "", 0, 0},
		{"password placeholder", `password = "your_password_here"`, "", 0, 0},
		{"password word", "password: correcthorsebatterystaple", "", 0, 0},
		{"password comparison", `if password == "letmein123!":`, "", 0, 0},
		{"tokenizer", "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')", "", 0, 0},
		// PII
		{"email", "Contact jane.doe@acme-corp.com for details.", "pii.email", 0.05, 0.15},
		{"email example domain", "Write to user@example.com", "", 0, 0},
		{"at sign", "meet @ 5pm, @alice said", "", 0, 0},
		{"card visa spaced", "card 4556 7375 8689 9855 exp 12/27", "pii.credit_card", 0.4, 0.5},
		{"card test number", "use 4242424242424242 in test mode", "pii.credit_card", 0.05, 0.15},
		{"card luhn invalid", "card 4556 7375 8689 9856", "", 0, 0},
		{"long id", "order id 12345678901234567 shipped", "", 0, 0},
		{"ssn", "SSN: 536-22-1234", "pii.ssn", 0.4, 0.5},
		{"ssn invalid area", "ref 666-22-1234 and 900-12-1234", "", 0, 0},
		{"date not ssn", "on 2024-01-15 at 10:30", "", 0, 0},
		{"iban", "IBAN: DE44 5001 0517 5407 3249 31", "pii.iban", 0.2, 0.4},
		{"iban example", "e.g. GB82 WEST 1234 5698 7654 32", "pii.iban", 0.05, 0.15},
		{"iban bad checksum", "DE44 5001 0517 5407 3249 32", "", 0, 0},
		// benign
		{"git sha and uuid", "commit 3f786850e387550fdab836ed7e6dc881de23001b id 123e4567-e89b-12d3-a456-426614174000", "", 0, 0},
		{"prose", "The meeting is at 10:30 on 2024-05-01; call 555-0100 or visit https://example.org/a?b=c.", "", 0, 0},
	}
	checkCases(t, newSecretsDetector(), cases)
}

func TestSecretsEvidenceIsRedacted(t *testing.T) {
	secrets := []string{fakeGitHub, fakeStripe, fakeAWSID, fakeAWSSecret, fakeOpenAI, fakeAnthropic, fakeGoogle, fakeGitLab, fakeSlack, "4556737586899855", "536-22-1234", "q7#Lm2!xP9vR"}
	text := strings.Join([]string{
		"a " + fakeGitHub, "b " + fakeStripe, "id " + fakeAWSID + " secret " + fakeAWSSecret, "c " + fakeOpenAI,
		"d " + fakeAnthropic, "e " + fakeGoogle, "f " + fakeGitLab, "g " + fakeSlack, "card 4556737586899855",
		"ssn 536-22-1234", `password = "q7#Lm2!xP9vR"`,
		"-----BEGIN EC PRIVATE KEY-----\n" + fakeKeyBody + "-----END EC PRIVATE KEY-----",
	}, "\n")
	fs, _ := runDetector(t, newSecretsDetector(), text)
	rules := map[string]bool{}
	for _, f := range fs {
		rules[f.Rule] = true
		for _, s := range secrets {
			if strings.Contains(f.Evidence, s) || strings.Contains(f.Evidence, s[len(s)/2:]) {
				t.Errorf("%s evidence %q leaks %q", f.Rule, f.Evidence, s)
			}
		}
		if strings.Contains(f.Evidence, fakeKeyBody[:40]) {
			t.Errorf("%s evidence leaks key material", f.Rule)
		}
	}
	if len(rules) < 12 {
		t.Fatalf("found rules %v, want 12", rules)
	}
}

func TestSecretRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"AKIAIOSFODNN7EXAMPLE", "AKIA************MPLE"},
		{"abcdefgh", "ab****gh"},
		{"abc", "***"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := secRedact(c.in); got != c.want {
				t.Fatalf("secRedact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestSecretsEngine(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, text, rule string
		band             Band
	}{
		{"leaked key quarantined", "config:\n  token: " + fakeGitHub, "secrets.github_token", BandQuarantine},
		{"email stays clean", "Thanks,\nJane Doe\njane.doe@acme-corp.com", "pii.email", BandClean},
		{"card is elevated at most", "Card: 4556 7375 8689 9855", "pii.credit_card", BandClean},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Scan(Document{ID: "1", Fields: []Field{{Name: "text", Text: c.text}}})
			found := false
			for _, f := range r.Findings {
				found = found || f.Rule == c.rule
			}
			if !found || r.Band != c.band {
				t.Fatalf("found %s = %v, band %s (want %s), findings %+v", c.rule, found, r.Band, c.band, r.Findings)
			}
		})
	}
}

// FuzzSecrets checks that the secrets detector never panics and keeps its
// finding invariants on any input.
func FuzzSecrets(f *testing.F) {
	for _, s := range []string{"ghp_", "-----BEGIN RSA PRIVATE KEY-----", "a@b.co", "4111 1111 1111 1111", "DE44 5001", "eyJ.eyJ.", "password=", "AKIA", "123-45-6789"} {
		f.Add(s)
	}
	d := newSecretsDetector()
	f.Fuzz(func(t *testing.T, s string) {
		runDetector(t, d, s)
	})
}

func BenchmarkSecrets(b *testing.B) { benchDetector(b, newSecretsDetector()) }

// BenchmarkSecretsWeb is the secrets detector on web prose.
func BenchmarkSecretsWeb(b *testing.B) { benchDetectorWeb(b, newSecretsDetector()) }
