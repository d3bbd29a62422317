package account

// checkVoicemail checks users[i].voicemail: the no-answer timeout within
// its bounds and a custom greeting that is one of the account's prompts[]
// (its WAV is synced as a blob like every custom prompt).
func (c *checker) checkVoicemail(i int, v *Voicemail) {
	if v == nil {
		return
	}
	path := index("users", i) + ".voicemail"
	if v.NoAnswerS != 0 && (v.NoAnswerS < MinVoicemailNoAnswerS || v.NoAnswerS > MaxVoicemailNoAnswerS) {
		c.addf(path+".no_answer_s", "must be %d to %d seconds (or absent for %d), got %d",
			MinVoicemailNoAnswerS, MaxVoicemailNoAnswerS, DefaultVoicemailNoAnswerS, v.NoAnswerS)
	}
	switch {
	case v.Greeting == "":
	case !isName(v.Greeting):
		c.addf(path+".greeting", "%q is not a prompt name; use letters, digits, '.', '_', '-' and '/' between parts", v.Greeting)
	case !c.hasPrompt(v.Greeting):
		c.addf(path+".greeting", "no prompts[] entry is named %q; add the recording to prompts[] or leave greeting out for the built-in one", v.Greeting)
	}
}

// hasPrompt says whether prompts[] has a recording called name.
func (c *checker) hasPrompt(name string) bool {
	for _, p := range c.s.Prompts {
		if p.Name == name {
			return true
		}
	}
	return false
}
