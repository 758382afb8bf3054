//! A [`SearchQuery`] as a tantivy query: the same meaning the Elasticsearch store gives it.
//! Text clauses are phrases of the field's tokens (one token: a term), in either text field;
//! filters are exact terms or ranges on the fast fields; `NOT` excludes from everything.
//! Numeric ranges in a conjunction are checked beside its other clauses where those narrow the
//! search (see `fast_queries`).

use std::ops::Bound;

use tantivy::query::{BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field as TantivyField, IndexRecordOption};
use tantivy::{Index, Term};

use super::fast_queries::{CheckedRangesQuery, EveryDocument, HasValueQuery, NumericRange};
use super::schema::Fields;
use super::sorted::ValueType;
use super::window::WindowQuery;
use sluice_store::fields::{Field, FieldKind};
use sluice_store::{Filter, SearchQuery, StoreError, TextField, TextQuery, normalize_level};

pub(super) struct QueryBuilder<'a> {
    pub index: &'a Index,
    pub fields: &'a Fields,
}

impl QueryBuilder<'_> {
    pub fn build(&self, query: &SearchQuery) -> Result<Box<dyn Query>, StoreError> {
        let mut clauses = Clauses::default();
        if let Some(text) = &query.text {
            clauses.musts.push(self.text(text)?);
        }
        for filter in query.effective_filters() {
            self.add_filter(&mut clauses, &filter);
        }
        if query.from_ms.is_some() || query.to_ms.is_some() {
            clauses.musts.push(Box::new(WindowQuery::new(
                self.fields.timestamp,
                query.from_ms,
                query.to_ms,
            )));
        }
        Ok(clauses.all())
    }

    /// A numeric range is kept apart, to be checked beside the other clauses (see
    /// [`CheckedRangesQuery`]).
    fn add_filter(&self, clauses: &mut Clauses, filter: &Filter) {
        match self.numeric_range(filter) {
            Some(range) => clauses.ranges.push(range),
            None => clauses.musts.push(self.filter(filter)),
        }
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
            TextQuery::And(parts) => {
                let mut clauses = Clauses::default();
                for part in parts {
                    match part {
                        TextQuery::Filter(filter) => self.add_filter(&mut clauses, filter),
                        _ => clauses.musts.push(self.text(part)?),
                    }
                }
                clauses.all()
            }
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
            Filter::Equals(field, value) if !field.is_numeric() => match self.term(*field, value) {
                Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                None => Box::new(EmptyQuery),
            },
            Filter::Equals(..) | Filter::Range { .. } => match self.numeric_range(filter) {
                Some(range) => Box::new(range.listing),
                // Not a number, or a range on text or flags (which the API never asks).
                None => Box::new(EmptyQuery),
            },
            Filter::Exists(field) => Box::new(HasValueQuery::new(field.tantivy_name())),
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
            // Numbers are matched as ranges (see `numeric_range`).
            FieldKind::Double | FieldKind::Long => None,
            FieldKind::Boolean => value
                .parse::<bool>()
                .ok()
                .map(|b| Term::from_field_bool(target, b)),
        }
    }

    /// A numeric filter as a range on the field's column: numbers have only a fast column, so
    /// equality is a range of one value. `None` for any other filter.
    fn numeric_range(&self, filter: &Filter) -> Option<NumericRange> {
        let (field, lower, upper) = match filter {
            Filter::Equals(field, value) if field.is_numeric() => {
                let number = value.parse::<f64>().ok()?;
                (*field, Bound::Included(number), Bound::Included(number))
            }
            Filter::Range {
                field,
                lower,
                upper,
            } => (*field, *lower, *upper),
            _ => return None,
        };
        let target = self.fields.of(field);
        let (value_type, lower, upper, listing) = match field.kind() {
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
                let listing = RangeQuery::new(lower.map(term), upper.map(term));
                (ValueType::I64, lower, upper, listing)
            }
            FieldKind::Double => {
                let term = |x: f64| Term::from_field_f64(target, x);
                let listing = RangeQuery::new(lower.map(term), upper.map(term));
                (ValueType::F64, lower, upper, listing)
            }
            FieldKind::Keyword | FieldKind::Boolean => return None,
        };
        Some(NumericRange {
            field: field.tantivy_name(),
            value_type,
            lower,
            upper,
            listing,
        })
    }
}

/// The clauses of a conjunction, numeric ranges apart.
#[derive(Default)]
struct Clauses {
    musts: Vec<Box<dyn Query>>,
    ranges: Vec<NumericRange>,
}

impl Clauses {
    /// What every clause matches.
    fn all(mut self) -> Box<dyn Query> {
        if self.ranges.is_empty() {
            return match self.musts.len() {
                0 => Box::new(EveryDocument),
                1 => self.musts.remove(0),
                _ => Box::new(BooleanQuery::new(
                    self.musts.into_iter().map(|q| (Occur::Must, q)).collect(),
                )),
            };
        }
        if self.musts.is_empty() {
            // Nothing else to lead: the ranges list their documents from the columns.
            self.musts = self
                .ranges
                .drain(..)
                .map(|range| Box::new(range.listing) as Box<dyn Query>)
                .collect();
            return self.all();
        }
        let ranges = std::mem::take(&mut self.ranges);
        Box::new(CheckedRangesQuery {
            lead: self.all(),
            ranges,
        })
    }
}

/// Everything but what `query` matches.
fn excluding(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(EveryDocument) as Box<dyn Query>),
        (Occur::MustNot, query),
    ]))
}
