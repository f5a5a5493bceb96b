module "orders_db" {
  source              = "./modules/postgres"
  name                = "orders"
  subnet_group        = aws_db_subnet_group.private.name
  publicly_accessible = false
}

module "analytics_db" {
  source         = "./modules/postgres"
  name           = "analytics"
  instance_class = "db.r6g.large"
  subnet_group   = aws_db_subnet_group.private.name
}
