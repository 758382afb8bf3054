//! A [`SearchQuery`] as a tantivy query: the same meaning the Elasticsearch store gives it.
//! Text clauses are phrases of the field's tokens (one token: a term), in either text field;
//! filters are exact terms or ranges on the fast fields; `NOT` excludes from everything.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{Field as TantivyField, IndexRecordOption};
use tantivy::{Index, Term};

use super::schema::Fields;
use super::window::WindowQuery;
use crate::store::fields::{Field, FieldKind};
use crate::store::{Filter, SearchQuery, StoreError, TextField, TextQuery, normalize_level};

pub(super) struct QueryBuilder<'a> {
    pub index: &'a Index,
    pub fields: &'a Fields,
}

impl QueryBuilder<'_> {
    pub fn build(&self, query: &SearchQuery) -> Result<Box<dyn Query>, StoreError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(text) = &query.text {
            clauses.push((Occur::Must, self.text(text)?));
        }
        for filter in query.effective_filters() {
            clauses.push((Occur::Must, self.filter(&filter)));
        }
        if query.from_ms.is_some() || query.to_ms.is_some() {
            clauses.push((
                Occur::Must,
                Box::new(WindowQuery::new(
                    self.fields.timestamp,
                    query.from_ms,
                    query.to_ms,
                )),
            ));
        }
        Ok(match clauses.len() {
            0 => Box::new(AllQuery),
            _ => Box::new(BooleanQuery::new(clauses)),
        })
    }

    fn text(&self, text: &TextQuery) -> Result<Box<dyn Query>, StoreError> {
        Ok(match text {
            TextQuery::Phrase { fields, phrase } => {
                let mut alternatives = Vec::new();
                for field in fields {
                    let target = match field {
                        TextField::Message => self.fields.message,
                        TextField::ErrorMessage => self.fields.error_message,
                    };
                    alternatives.push((Occur::Should, self.phrase(target, phrase)?));
                }
                Box::new(BooleanQuery::new(alternatives))
            }
            TextQuery::Filter(filter) => self.filter(filter),
            TextQuery::And(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| Ok((Occur::Must, self.text(part)?)))
                    .collect::<Result<_, StoreError>>()?,
            )),
            TextQuery::Or(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| Ok((Occur::Should, self.text(part)?)))
                    .collect::<Result<_, StoreError>>()?,
            )),
            TextQuery::Not(inner) => excluding(self.text(inner)?),
        })
    }

    /// The phrase's tokens, as the field's tokenizer makes them, in order.
    fn phrase(&self, field: TantivyField, phrase: &str) -> Result<Box<dyn Query>, StoreError> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(field)
            .map_err(|e| StoreError::Search(format!("tokenizer: {e}")))?;
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(phrase);
        while stream.advance() {
            terms.push(Term::from_field_text(field, &stream.token().text));
        }
        Ok(match terms.len() {
            // Nothing searchable in it (only punctuation): matches nothing, as in Elasticsearch.
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::Basic)),
            _ => Box::new(PhraseQuery::new(terms)),
        })
    }

    pub fn filter(&self, filter: &Filter) -> Box<dyn Query> {
        match filter {
            // Numbers have only a fast column: equality is a range of one value.
            Filter::Equals(field, value) if field.is_numeric() => match value.parse::<f64>() {
                Ok(number) => self.range(*field, Bound::Included(number), Bound::Included(number)),
                Err(_) => Box::new(EmptyQuery),
            },
            Filter::Equals(field, value) => match self.term(*field, value) {
                Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                None => Box::new(EmptyQuery),
            },
            Filter::Range {
                field,
                lower,
                upper,
            } => self.range(*field, *lower, *upper),
            Filter::Exists(field) => Box::new(ExistsQuery::new(field.tantivy_name(), false)),
            Filter::AnyOf(filters) => Box::new(BooleanQuery::new(
                filters
                    .iter()
                    .map(|f| (Occur::Should, self.filter(f)))
                    .collect(),
            )),
        }
    }

    /// The term for `value` in `field`; `None` when the value cannot be one of the field's.
    fn term(&self, field: Field, value: &str) -> Option<Term> {
        let target = self.fields.of(field);
        match field.kind() {
            FieldKind::Keyword if field == Field::Level => {
                Some(Term::from_field_text(target, &normalize_level(value)))
            }
            FieldKind::Keyword => Some(Term::from_field_text(target, value)),
            // Numbers are matched as ranges (see `filter`).
            FieldKind::Double | FieldKind::Long => None,
            FieldKind::Boolean => value
                .parse::<bool>()
                .ok()
                .map(|b| Term::from_field_bool(target, b)),
        }
    }

    fn range(&self, field: Field, lower: Bound<f64>, upper: Bound<f64>) -> Box<dyn Query> {
        let target = self.fields.of(field);
        match field.kind() {
            FieldKind::Long => {
                // Whole-number bounds, as Elasticsearch rounds a fractional bound on a `long`.
                let lower = match lower {
                    Bound::Included(x) => Bound::Included(x.ceil()),
                    Bound::Excluded(x) => Bound::Included(x.floor() + 1.0),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let upper = match upper {
                    Bound::Included(x) => Bound::Included(x.floor()),
                    Bound::Excluded(x) => Bound::Included(x.ceil() - 1.0),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let term = |x: f64| Term::from_field_i64(target, x as i64);
                Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
            }
            FieldKind::Double => {
                let term = |x: f64| Term::from_field_f64(target, x);
                Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
            }
            // Ranges make no sense on text or flags; the query syntax and the API never ask.
            FieldKind::Keyword | FieldKind::Boolean => Box::new(EmptyQuery),
        }
    }
}

/// Everything but what `query` matches.
fn excluding(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
        (Occur::MustNot, query),
    ]))
}
