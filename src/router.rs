//! Topic patterns and the channels they start.

use crate::channel::Channel;
use crate::error::Error;
use crate::socket::Assigns;
use std::sync::Arc;

/// Makes the channel value for a topic; runs on the new channel's thread.
pub(crate) type Factory = Arc<dyn Fn(&str) -> Box<dyn Channel> + Send + Sync>;

/// A topic pattern: exact, or a prefix when it ends in `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    prefix: String,
    wildcard: bool,
}

impl Pattern {
    pub(crate) fn parse(pattern: &str) -> Result<Pattern, Error> {
        let (prefix, wildcard) = match pattern.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (pattern, false),
        };
        if prefix.contains('*') {
            return Err(Error::Config(format!("route {pattern:?}: `*` may only appear once, at the end")));
        }
        Ok(Pattern { prefix: prefix.to_owned(), wildcard })
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        if self.wildcard { topic.starts_with(&self.prefix) } else { topic == self.prefix }
    }
}

/// One `channel "pattern", Module, assigns: ...` line.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) pattern: Pattern,
    pub(crate) assigns: Assigns,
    pub(crate) factory: Factory,
    /// The channel's type name, for log lines.
    pub(crate) name: &'static str,
}

impl Route {
    pub(crate) fn new<C, F>(pattern: &str, assigns: Assigns, factory: F) -> Result<Route, Error>
    where
        C: Channel,
        F: Fn(&str) -> C + Send + Sync + 'static,
    {
        Ok(Route {
            pattern: Pattern::parse(pattern)?,
            assigns,
            factory: Arc::new(move |topic| Box::new(factory(topic))),
            name: std::any::type_name::<C>(),
        })
    }
}

/// The first route whose pattern matches `topic`.
pub(crate) fn find<'r>(routes: &'r [Route], topic: &str) -> Option<&'r Route> {
    routes.iter().find(|route| route.pattern.matches(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_is_a_prefix_match_and_needs_no_colon() {
        let p = Pattern::parse("room:*").unwrap();
        assert!(p.matches("room:") && p.matches("room:lobby") && p.matches("room:a:b"));
        assert!(!p.matches("room") && !p.matches("rooms:1"));
        let p = Pattern::parse("foo*").unwrap();
        assert!(p.matches("foo:1") && p.matches("food"));
    }

    #[test]
    fn patterns_without_star_are_exact() {
        let p = Pattern::parse("lobby").unwrap();
        assert!(p.matches("lobby") && !p.matches("lobby:1"));
    }

    #[test]
    fn star_in_the_middle_or_twice_is_a_config_error() {
        assert!(matches!(Pattern::parse("a*b"), Err(Error::Config(_))));
        assert!(matches!(Pattern::parse("a**"), Err(Error::Config(_))));
    }
}
