//! Enums stored as text columns, on both backends: `ToSql`/`FromSql` for the `MultiBackend` of
//! [`super::DbConnection`] (which derives them only for diesel's own types) by way of each
//! backend's `str`, so queries compare and load the enum itself, never a string spelled by hand.
//! An enum opts in with `#[derive(AsExpression, FromSqlRow)] #[diesel(sql_type = Text)]`, an
//! `ALL` list, an `as_str`, and [`text_enum!`].

/// Implements text `ToSql`/`FromSql` for an enum with `ALL: [Self; N]` and `as_str(self)`; a
/// stored text that names no variant is a deserialization error.
macro_rules! text_enum {
    ($ty:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, $crate::db::connection::MultiBackend>
            for $ty
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::db::connection::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Text, self.as_str()));
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl
            diesel::deserialize::FromSql<
                diesel::sql_types::Text,
                $crate::db::connection::MultiBackend,
            > for $ty
        {
            fn from_sql(
                bytes: <$crate::db::connection::MultiBackend as diesel::backend::Backend>::RawValue<
                    '_,
                >,
            ) -> diesel::deserialize::Result<Self> {
                let text: String = bytes.from_sql::<String, diesel::sql_types::Text>()?;
                <$ty>::ALL
                    .into_iter()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| {
                        format!(concat!("unknown ", stringify!($ty), " `{}`"), text).into()
                    })
            }
        }
    };
}

pub(crate) use text_enum;

/// Implements integer `ToSql`/`FromSql` for an enum with `ALL: [Self; N]` and
/// `code(self) -> &'static i32`; a stored number that names no variant is a deserialization error.
macro_rules! integer_enum {
    ($ty:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Integer, diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <i32 as diesel::serialize::ToSql<diesel::sql_types::Integer, diesel::pg::Pg>>::to_sql(
                    self.code(),
                    out,
                )
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Integer, diesel::sqlite::Sqlite> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(*self.code());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Integer, $crate::db::connection::MultiBackend>
            for $ty
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::db::connection::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Integer, self.code()));
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Integer, $crate::db::connection::MultiBackend>
            for $ty
        {
            fn from_sql(
                bytes: <$crate::db::connection::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let code: i32 = bytes.from_sql::<i32, diesel::sql_types::Integer>()?;
                <$ty>::ALL
                    .into_iter()
                    .find(|value| *value.code() == code)
                    .ok_or_else(|| format!(concat!("unknown ", stringify!($ty), " {}"), code).into())
            }
        }
    };
}

pub(crate) use integer_enum;

#[cfg(test)]
mod tests {
    use crate::db::events::EventKind;
    use crate::db::login_failures::Outcome;
    use crate::db::sessions::{RevokeReason, SessionStatus};

    fn distinct(names: Vec<&str>) {
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
    }

    #[test]
    fn every_stored_name_is_distinct_and_names_its_variant() {
        distinct(SessionStatus::ALL.map(SessionStatus::as_str).to_vec());
        distinct(RevokeReason::ALL.map(RevokeReason::as_str).to_vec());
        distinct(EventKind::ALL.map(EventKind::as_str).to_vec());
        for status in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SessionStatus::parse("Active"), None);
        // The numbers earlier versions stored.
        assert_eq!(Outcome::ALL.map(|o| *o.code()), [0, 1, 2]);
    }
}
