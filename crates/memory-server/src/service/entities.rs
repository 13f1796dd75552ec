//! Entity-aware scoring: the names a query mentions, and how many of them a
//! memory's indexed text mentions too.
//!
//! A name is a capitalised word ("Caroline", "Kyoto"), possessive stripped,
//! that is not a question or function word ("What", "Did", "I"). Questions
//! about people in a store of many conversations are mostly about turns that
//! name those people (as speaker or in the text); similarity alone ranks a
//! turn of another person on the same topic as high.

use std::collections::HashSet;

/// Capitalised words that start questions and sentences rather than name anything.
const NOT_NAMES: &[&str] = &[
    "A", "About", "After", "All", "Also", "An", "And", "Any", "Are", "As", "At", "Before", "But",
    "By", "Can", "Could", "Describe", "Did", "Do", "Does", "During", "Each", "Either", "Ever",
    "For", "From", "Give", "Had", "Has", "Have", "He", "Her", "His", "How", "I", "If", "In", "Is",
    "It", "Its", "List", "Me", "My", "Name", "Neither", "Not", "Of", "On", "Or", "Our", "She",
    "Should", "Since", "So", "Some", "Tell", "That", "The", "Their", "Them", "Then", "There",
    "These", "They", "This", "Those", "To", "Until", "Was", "We", "Were", "What", "Whats", "When",
    "Where", "Which", "While", "Who", "Whom", "Whose", "Why", "Will", "With", "Would", "You",
    "Your",
];

/// The distinct names `query` mentions, in order.
pub fn names(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for word in words(query) {
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("\u{2019}s"))
            .unwrap_or(word);
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        if capitalised
            && word.chars().count() > 1
            && !NOT_NAMES.contains(&word)
            && seen.insert(word.to_owned())
        {
            out.push(word.to_owned());
        }
    }
    out
}

/// The share of `names` that `text` mentions as whole words (0 without names).
pub fn share(names: &[String], text: &str) -> f32 {
    if names.is_empty() {
        return 0.0;
    }
    let present: HashSet<&str> = words(text)
        .map(|w| w.strip_suffix("'s").unwrap_or(w))
        .collect();
    let found = names
        .iter()
        .filter(|n| present.contains(n.as_str()))
        .count();
    found as f32 / names.len() as f32
}

/// Words: letters, digits and apostrophes between anything else.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '\u{2019}'))
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_capitalised_words_that_are_not_question_words() {
        assert_eq!(
            names("What did Greta's sister give them in Kyoto?"),
            ["Greta", "Kyoto"]
        );
        assert_eq!(
            names("Would Dario and dario enjoy Dario's trip?"),
            ["Dario"]
        );
        assert_eq!(names("When did I adopt a pet?"), Vec::<String>::new());
        assert_eq!(names("Caroline said what?"), ["Caroline"]);
        assert_eq!(names("What did Ana’s dog eat?"), ["Ana"]);
    }

    #[test]
    fn the_share_counts_whole_word_mentions() {
        let n = names("Did Greta and Farid meet?");
        assert_eq!(share(&n, "Greta: I met Farid's cousin."), 1.0);
        assert_eq!(share(&n, "Greta (8 May 2023): hello"), 0.5);
        assert_eq!(share(&n, "Gretal and Faridoon"), 0.0);
        assert_eq!(share(&[], "Greta"), 0.0);
    }
}
